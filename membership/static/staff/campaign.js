/* Campaign pages, progressive enhancement only: every form works without this file.
 * - The form: the gate's fields show only for placement "gate"; the error summary takes focus.
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

  function focusErrors() {
    var summary = D.getElementById("form-errors");
    if (summary) summary.focus();
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
  dragRows();
})();
