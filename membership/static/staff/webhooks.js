/* Operations page: while an operation runs, poll its status and reload the page when it
   ends, so the result shows without a click. Without JavaScript the Refresh link does it. */
(function () {
  "use strict";
  var section = document.getElementById("status");
  if (!section || section.getAttribute("data-running") !== "true" || !window.fetch) return;
  var url = section.getAttribute("data-status-url");
  var progress = document.getElementById("progress");
  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (body) {
        if (!body || !body.status) return setTimeout(poll, 5000);
        if (body.status.state !== "running") return window.location.reload();
        if (progress && body.status.progress) progress.textContent = body.status.progress;
        setTimeout(poll, 2000);
      })
      .catch(function () { setTimeout(poll, 5000); });
  }
  setTimeout(poll, 1500);
})();
