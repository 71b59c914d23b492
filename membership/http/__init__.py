"""Where HTTP is spoken beyond the routes: security headers and rate limits."""
