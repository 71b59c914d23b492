"""Where HTTP is spoken beyond the routes: the outer WSGI layer every request passes
(request id, security headers, body limits, metrics), JSON bodies, CORS and rate limits."""
