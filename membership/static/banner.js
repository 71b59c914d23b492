/* membership banner widget. Embed:
 *   <div data-membership-banner data-locale="uk"></div>
 *   <script src="https://MEMBERSHIP-HOST/static/banner.js" async></script>
 * Fetches /v1/banner (2 s timeout) from its own origin in the page's language reduced to
 * one we serve (uk-UA: uk, else en) into each box; on failure the box stays empty. */
(function () {
  "use strict";
  var D = document, me = D.currentScript, base = new URL(me ? me.src : "/", location.href).origin;
  var SEL = "[data-membership-banner]";
  var CSS =
    SEL + "{display:flex;min-height:12rem;box-sizing:border-box}" +
    "@media (max-width:30rem){" + SEL + "{min-height:15rem}}" +
    ".mb{flex:1;display:flex;flex-flow:column;justify-content:center;box-sizing:border-box;" +
    "padding:1rem 1.25rem;background:#fff6d1;border-top:4px solid #f5c400;color:#16140f;" +
    "font:1rem/1.4 system-ui,sans-serif}" +
    ".mb-h{margin:0 0 .25rem;font-size:1.375rem;line-height:1.25;font-weight:750}" +
    ".mb-m{margin:0 0 .75rem}" +
    ".mb-bar{height:.5rem;margin:0 0 1rem;border-radius:.25rem;background:#e8dfba;overflow:hidden}" +
    ".mb-fill{height:100%;background:#16140f;transform-origin:0 0}" +
    ".mb-cta{align-self:flex-start;padding:.55rem 1.1rem;border-radius:.25rem;background:#16140f;" +
    "color:#fff;font-weight:650;text-decoration:none}" +
    ".mb-cta:hover,.mb-cta:focus-visible{background:#3a352a;outline-offset:2px}";
  var SERVED = ["en", "uk"]; // config.py's, fallback first
  var pending = {};

  // A new element appended to `to`, with its text (a <style> is checked by the CSP once in).
  function el(to, tag, cls, text) {
    var e = D.createElement(tag);
    e.className = cls;
    if (text) e.textContent = text;
    return to.appendChild(e);
  }

  function str(s) {
    return typeof s == "string" && s.length > 0;
  }

  function ok(d) {
    // count > 0: "0 members on board" is never worth printing, true or not.
    return d && typeof d.count == "number" && d.count > 0 && str(d.headline) && str(d.message) &&
      d.cta && str(d.cta.label) && /^https?:\/\//.test(d.cta.url);
  }

  function render(box, d) {
    var root = el(box, "div", "mb"), g = d.goal, bar, k, aria;
    el(root, "p", "mb-h", d.headline);
    el(root, "p", "mb-m", d.message);
    if (g && g.target > 0 && typeof g.progress == "number") {
      bar = el(root, "div", "mb-bar");
      aria = { role: "progressbar", "aria-valuemin": 0, "aria-valuemax": g.target,
        "aria-valuenow": Math.min(d.count, g.target), "aria-label": d.message };
      if (str(d.count_display) && str(g.target_display))
        aria["aria-valuetext"] = d.count_display + " / " + g.target_display;
      for (k in aria) bar.setAttribute(k, aria[k]);
      el(bar, "div", "mb-fill").style.transform = "scaleX(" + Math.max(0, Math.min(1, g.progress)) + ")";
    }
    el(root, "a", "mb-cta", d.cta.label).href = d.cta.url;
    box.setAttribute("data-state", "ready");
  }

  // One request per language, whatever the number of boxes in it. The time limit covers
  // reading the body too: an abort fails the fetch or the read.
  function fetchBanner(locale) {
    return pending[locale] || (pending[locale] =
      fetch(base + "/v1/banner?locale=" + locale, { credentials: "omit", signal: AbortSignal.timeout(2000) })
        .then(function (r) {
          if (!r.ok) throw r.status;
          return r.json();
        }).then(function (d) {
          if (!ok(d)) throw 0; // not a banner we can show
          return d;
        }));
  }

  function start() {
    if (!D.getElementById("mb-css")) el(D.head, "style", "", CSS).id = "mb-css";
    [].forEach.call(D.querySelectorAll(SEL), function (box) {
      if (box.getAttribute("data-state")) return;
      box.setAttribute("data-state", "loading");
      var locale = (box.getAttribute("data-locale") || D.documentElement.lang || "")
        .split(/[^a-z]/i)[0].toLowerCase();
      fetchBanner(SERVED.indexOf(locale) < 0 ? SERVED[0] : locale).then(function (d) {
        render(box, d);
      }, function () {
        box.setAttribute("data-state", "error"); // nothing shown; the reserved space stays
      });
    });
  }

  if (D.readyState == "loading") D.addEventListener("DOMContentLoaded", start);
  else start();
})();
