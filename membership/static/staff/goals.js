/* Goals and copy: the banner preview follows the form as the staff member types.
 * Without this script the form's Preview button does the same through the server.
 * Posts the form's own fields to its data-preview-url (/staff/api/goals/preview, which
 * stores nothing) at most every 300 ms and draws the answer into #preview; a refusal marks
 * the boxes it names (aria-invalid, the message beside each), as the server's page does. */
(function () {
  "use strict";
  var form = document.querySelector("form[data-preview-url]");
  var section = document.getElementById("preview");
  if (!form || !section || !window.fetch || !window.FormData) return;
  var note = document.getElementById("preview-note");
  var timer = null, asked = 0;

  function part(figure, name) {
    return figure.querySelector('[data-part="' + name + '"]');
  }

  function draw(data) {
    var figures = section.querySelectorAll("figure[data-locale]");
    Array.prototype.forEach.call(figures, function (figure) {
      var d = data.banner[figure.getAttribute("data-locale")];
      if (!d) return;
      part(figure, "headline").textContent = d.headline;
      part(figure, "message").textContent = d.message;
      part(figure, "cta").textContent = d.cta.label;
      var bar = part(figure, "bar"), g = d.goal;
      if (g && g.target > 0) {
        bar.removeAttribute("hidden");
        bar.setAttribute("aria-valuemax", String(g.target));
        bar.setAttribute("aria-valuenow", String(Math.min(d.count, g.target)));
        bar.setAttribute("aria-valuetext", d.count_display + " / " + g.target_display);
        bar.setAttribute("aria-label", d.message);
        var p = Math.max(0, Math.min(1, g.progress));
        bar.querySelector("rect").setAttribute("width", String(Math.round(p * 1000)));
      } else {
        bar.setAttribute("hidden", "");
      }
    });
    note.textContent = data.note; // the server's words, in the right plural form
    section.setAttribute("data-state", "ready");
  }

  // Each named box marked, with its message beside it (as the server's page does); the
  // others unmarked.
  function mark(fields) {
    Array.prototype.forEach.call(form.querySelectorAll("input[id]"), function (box) {
      var id = box.id + "-error", p = document.getElementById(id), message = fields[box.name];
      var described = (box.getAttribute("aria-describedby") || "").split(" ").filter(function (x) {
        return x && x !== id;
      });
      if (message) {
        if (!p) {
          p = document.createElement("p");
          p.className = "field-error";
          p.id = id;
          box.insertAdjacentElement("afterend", p);
        }
        p.textContent = message;
        box.setAttribute("aria-invalid", "true");
        described.push(id);
      } else {
        if (p) p.parentNode.removeChild(p);
        box.removeAttribute("aria-invalid");
      }
      if (described.length) box.setAttribute("aria-describedby", described.join(" "));
      else box.removeAttribute("aria-describedby");
    });
  }

  function ask() {
    var mine = ++asked;
    fetch(form.getAttribute("data-preview-url"), {
      method: "POST",
      credentials: "same-origin",
      headers: { "Accept": "application/json" },
      body: new URLSearchParams(new FormData(form))
    }).then(function (r) {
      return r.json().then(function (body) { return { ok: r.ok, body: body }; });
    }).then(function (answer) {
      if (mine !== asked) return; // a newer question is on its way
      var e = !answer.ok && answer.body && answer.body.error;
      mark(e && e.fields || {});
      if (answer.ok) {
        draw(answer.body);
      } else {
        note.textContent = "Not previewed: " + (e ? e.message : "the server refused");
        section.setAttribute("data-state", "error");
      }
    }).catch(function () {
      if (mine !== asked) return;
      note.textContent = "Not previewed: the server did not answer. The Preview button still works.";
      section.setAttribute("data-state", "error");
    });
  }

  function later() {
    clearTimeout(timer);
    timer = setTimeout(ask, 300);
  }

  form.addEventListener("input", later);
  form.addEventListener("change", later);
})();
