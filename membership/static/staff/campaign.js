/* Campaign pages, progressive enhancement only: every form works without this file.
 * - The form: the gate's fields show only for placement "gate"; the first field in error
 *   takes focus, as does the field of a summary line that is followed; the preview beside
 *   the form follows it as the editor types: the form's own fields are posted to the
 *   aside's data-preview-url (which stores nothing) at most every 300 ms, and its HTML
 *   answer replaces the preview (a refusal lists what to fix). Without this file the
 *   "Preview without saving" button does the same through the server.
 * - The list: rows can be dragged to a new place; each step is the row's own "move up/down"
 *   form, posted as it would be by hand (the server decides and audits every change). */
(function () {
  "use strict";
  var D = document;

  function gateFields() {
    var placement = D.getElementById("f-placement");
    var gate = D.querySelector(".gate-fields");
    if (!placement || !gate) return;
    function sync() {
      gate.hidden = placement.value !== "gate" && !gate.querySelector(".field-error");
    }
    placement.addEventListener("change", sync);
    sync();
  }

  // The control to focus for a field's id: the field itself, or the first control of a group.
  function control(id) {
    var target = D.getElementById(id);
    if (!target || target.matches("input, select, textarea")) return target;
    return target.querySelector("input:not([type=hidden]), select, textarea");
  }

  function focusErrors() {
    var summary = D.getElementById("form-errors");
    if (!summary) return;
    var links = summary.querySelectorAll("a[data-field]");
    [].forEach.call(links, function (link) {
      link.addEventListener("click", function (e) {
        var field = control(link.getAttribute("data-field"));
        if (!field) return;
        e.preventDefault();
        field.focus();
      });
    });
    var first = links.length ? control(links[0].getAttribute("data-field")) : null;
    (first || summary).focus();
  }

  function livePreview() {
    var form = D.querySelector("form.campaign-form");
    var aside = D.getElementById("side-preview");
    var panel = D.getElementById("preview-panel");
    if (!form || !aside || !panel || !window.fetch || !window.FormData) return;
    var url = aside.getAttribute("data-preview-url"), timer = null, asked = 0;
    function ask() {
      var mine = ++asked, data = new FormData(form);
      data.delete("action");
      fetch(url, { method: "POST", credentials: "same-origin", body: new URLSearchParams(data) })
        .then(function (r) { return r.text().then(function (html) { return { ok: r.ok, html: html }; }); })
        .then(function (answer) {
          if (mine !== asked) return; // a newer question is on its way
          panel.innerHTML = answer.html;
          aside.setAttribute("data-state", answer.ok ? "ready" : "error");
        }, function () {
          if (mine !== asked) return;
          aside.setAttribute("data-state", "error");
        });
    }
    function later() {
      clearTimeout(timer);
      timer = setTimeout(ask, 300);
    }
    form.addEventListener("input", later);
    form.addEventListener("change", later);
    // A saved campaign is previewed at once; a new one, or one refused, once it is edited.
    if (!D.getElementById("form-preview") && !D.getElementById("form-errors") &&
        !D.getElementById("f-id")) ask();
  }

  // Dragging a row by n places posts its move form n times, one after the other, then reloads.
  function dragRows() {
    var body = D.querySelector("#campaigns tbody");
    if (!body || !body.querySelector(".move form")) return;
    var dragged = null;
    [].forEach.call(body.rows, function (row) {
      row.draggable = true;
      row.addEventListener("dragstart", function (e) {
        dragged = row;
        row.setAttribute("data-dragging", "");
        e.dataTransfer.effectAllowed = "move";
      });
      row.addEventListener("dragend", function () {
        row.removeAttribute("data-dragging");
      });
      row.addEventListener("dragover", function (e) {
        if (dragged && dragged !== row) e.preventDefault();
      });
      row.addEventListener("drop", function (e) {
        e.preventDefault();
        if (!dragged || dragged === row) return;
        var rows = [].slice.call(body.rows);
        var steps = rows.indexOf(row) - rows.indexOf(dragged);
        move(dragged.querySelector(".move form"), steps);
        dragged = null;
      });
    });
  }

  function move(form, steps) {
    var direction = steps < 0 ? "up" : "down", n = Math.abs(steps);
    var data = new FormData(form);
    data.set("direction", direction);
    function next() {
      if (n-- <= 0) return location.reload();
      fetch(form.action, { method: "POST", body: data, credentials: "same-origin", redirect: "manual" })
        .then(next, function () { location.reload(); });
    }
    next();
  }

  gateFields();
  focusErrors();
  livePreview();
  dragRows();
})();
