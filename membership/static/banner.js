/* membership member-count boxes (after common.js; see there how the scripts are built). Embed:
 *   <div data-membership-banner data-locale="uk"></div>
 *   <script src="https://MEMBERSHIP-HOST/static/banner.js" async></script>
 * (or prompt.js, which fills the boxes too: a page with both fills each box once).
 * Fetches /v1/banner (2 s timeout) from its own origin in the page's language reduced to
 * one we serve (uk-UA: uk, else en) into each box; on failure the box stays empty. */
var SEL = "[data-membership-banner]";
// The boxes' look, and what the asks share of it (prompt.js's .mp): in the page once, first.
var BOX_CSS =
  SEL + "{display:flex;min-height:12rem;box-sizing:border-box}" +
  "@media (max-width:30rem){" + SEL + "{min-height:15rem}}" +
  ".mb,.mp{box-sizing:border-box;padding:1rem 1.25rem;background:#fff6d1;border-top:4px solid #f5c400;" +
  "color:#16140f;font:1rem/1.4 system-ui,sans-serif}" +
  ".mb{flex:1;display:flex;flex-flow:column;justify-content:center}" +
  ".mb-h{margin:0 0 .25rem;font-size:1.375rem;line-height:1.25;font-weight:750}" +
  ".mb-m,.mp p{margin:0 0 .75rem}" +
  ".mb-bar{height:.5rem;margin:0 0 1rem;border-radius:.25rem;overflow:hidden}" +
  ".mb-bar,.mp-bar{background:#e8dfba}" +
  ".mb-fill,.mp-fill{display:block;height:100%;background:#16140f;transform-origin:0 0}" +
  ".mb-cta,.mp-cta{padding:.5rem 1rem;border-radius:.25rem;background:#16140f;color:#fff;font-weight:650;" +
  "text-decoration:none}" +
  ".mb-cta{align-self:flex-start}.mb-cta:hover,.mb-cta:focus-visible{background:#3a352a;outline-offset:2px}";
var SERVED = ["en", "uk"]; // config.py's, fallback first
var pending = {};

function countable(d) {
  // count > 0: "0 members on board" is never worth printing, true or not.
  return showable(d) && typeof d.count == "number" && d.count > 0 && str(d.message);
}

function fill(box, d) {
  var root = el("div", "mb", "", 0, box), g = d.goal;
  el("p", "mb-h", d.headline, 0, root);
  el("p", "mb-m", d.message, 0, root);
  if (g && g.target > 0 && typeof g.progress == "number") progress("div", "mb", d, g, root);
  el("a", "mb-cta", d.cta.label, { href: d.cta.url }, root);
  box.dataset.state = "ready";
}

// One request per language, whatever the number of boxes in it.
function count(locale) {
  return pending[locale] || (pending[locale] =
    call("/v1/banner?locale=" + locale, null, 2000).then(function (d) {
      if (!countable(d)) throw 0; // not a banner we can show
      return d;
    }));
}

// The look the boxes and the asks share, in the page once (before the asks' own CSS). Not under
// "mb-css", the id of a banner.js of before (a cache's, up to a day old), whose style, the
// boxes' alone, would stand in for it; a new id whenever a rule goes that another script needs.
function look() {
  if (!D.getElementById("mb-look")) el("style", "", BOX_CSS, { id: "mb-look" }, D.head);
}

function boxes() {
  var all = D.querySelectorAll(SEL);
  if (all.length) look();
  all.forEach(function (box) {
    if (box.dataset.state) return; // filled by the other script on the page
    box.dataset.state = "loading";
    var locale = language(box.dataset.locale);
    count(SERVED.indexOf(locale) < 0 ? SERVED[0] : locale).then(function (d) {
      fill(box, d);
    }, function () {
      box.dataset.state = "error"; // nothing shown; the reserved space stays
    });
  });
}

parsed(boxes);
