/* membership prompt widget, the core. Embed on article pages, after the article:
 *   <article data-section="war" data-tags="kursk,front"> ... <div data-membership-prompt></div>
 *   </article>
 *   <script src="https://MEMBERSHIP-HOST/static/prompt.js" async></script>
 * data-section, data-tags (comma-separated), data-locale and data-plan (of the call to action's
 * checkout: monthly by default, or yearly) on the script win over the <article>'s; the locale
 * defaults to <html lang>.
 * Once per page view it asks POST /v1/prompt (2 s timeout: no ask on a timeout or an error)
 * and shows what it gets: an inline ask in the slot, a banner (fixed bar), a modal dialog or a
 * gate over the article, each drawn by its module (prompt-inline.js...), loaded from our origin
 * only once an answer names it (draw()). It keeps in localStorage, and nowhere
 * else: "membership" (the reader's random id, articles read per UTC day for 90 days, the
 * prompts seen (newest 100) and dismissed) and "member_token" (sent with the ask, so a member is
 * not asked; kept from a #member_token= fragment, or asked for with the ?session_id= Checkout
 * returns with, and renewed a day before it ends, by prompt-member.js, loaded only then).
 * Without localStorage it shows nothing; a stored state that is not JSON, or that the service
 * refuses (a 400 naming the field: the service is its one judge), is removed: no ask this page
 * view, a new reader on the next. A call to action opens Stripe Checkout (POST /v1/checkout, by
 * prompt-checkout.js, loaded on the click), or its own link when that fails. It fills the page's member-count boxes too (banner.js is
 * built into it: after common.js and banner.js, see common.js), so an article page embeds
 * this one script. */
var KEY = "membership";
var TOKEN = "member_token";
// The close button's label (a gate's "Maybe later" is prompt-gate.js's), by language.
var CLOSE = { en: "Close", uk: "Закрити" };
// The script's data-locale, or its <article>'s (parsed by now: the script comes after it); the
// server reduces it to a locale it serves.
var lang = language(data("locale"));
var close = CLOSE[lang] || CLOSE.en, ls;

function iso(ms) {
  return new Date(ms).toISOString().slice(0, 19) + "Z";
}

// The stored state (a new reader's when there is none), as stored: the server is the one
// judge of its shape (a 400 naming the field), and the widget then starts afresh (reset()).
function load() {
  var raw = ls.getItem(KEY);
  return raw ? JSON.parse(raw) : {
    // 128 random bits in 22 characters of base64url
    reader: btoa(String.fromCharCode.apply(0, crypto.getRandomValues(new Uint8Array(16))))
      .slice(0, 22).replace(/\+/g, "-").replace(/\//g, "_"),
    articles: {}, views: [], dismissed: []
  };
}

// A state that cannot be read or that the server refused: no ask now, a new reader next time.
function reset() {
  try {
    ls.removeItem(KEY);
  } catch (e) {}
}

function save(s) {
  try {
    ls.setItem(KEY, JSON.stringify(s));
  } catch (e) {} // storage full: the ask still stands
}

// A view or a dismissal, kept for the next asks (the server keeps nothing per reader); a
// dismissal replaces the campaign's earlier one. A list the state lacks (or null: the server
// takes either) is started.
function remember(list, campaign) {
  try {
    var s = load();
    s[list] = (s[list] || []).filter(function (x) {
      return list == "views" || x.campaign != campaign;
    }).concat({ campaign: campaign, at: iso(Date.now()) }).slice(-100);
    save(s);
  } catch (e) {}
}

// Whether the member token `token` is due for renewal: a day before it ends (unix seconds, in its
// payload, which is readable without the key: base64url JSON [subject, issued at, expires at]),
// or now when that cannot be read.
function due(token) {
  try {
    return (JSON.parse(atob(token.split(".")[0].replace(/-/g, "+").replace(/_/g, "/")))[2] || 0) * 1e3 - Date.now() < 864e5;
  } catch (e) {
    return 1;
  }
}

// An event, sent even as the page goes away (call()'s `keep`).
function report(p, type) {
  call("/v1/prompt/events", JSON.stringify({ events: [{ type: type, token: p.token }] }), 1e4, true).catch(Boolean);
}

// The one click handler of every call to action, reported. A variant with its own URL
// (cta.checkout false) leads where staff chose, and a click with a modifier key (a new tab or
// window) is the browser's; any other opens Stripe Checkout, by the checkout module
// (prompt-checkout.js), loaded only now, which follows the link on any failure, as this does
// if the module fails to load: a click is never lost.
function go(p, e) {
  report(p, "click");
  if (e.ctrlKey || e.metaKey || e.shiftKey || e.altKey || p.cta.checkout === false) return;
  e.preventDefault();
  var s = module("checkout");
  s.p = p;
  on(s, "error", function () {
    location.href = p.cta.url;
  });
}

// Only in a page the reader has actually opened: not prerendering, not a hidden tab.
function shown(fn) {
  var wait = D.prerendering ? "prerenderingchange" : D.hidden ? "visibilitychange" : "";
  if (wait) on(D, wait, function () { shown(fn); }, { once: true });
  else fn();
}

// Once `node` is at least half on screen (an empty slot: once it is on screen at all).
function watch(node, fn) {
  var io = new IntersectionObserver(function (entries) {
    // (an empty slot's ratio is 1 once it intersects at all, 0 before)
    if (entries[entries.length - 1].intersectionRatio >= 0.5) {
      io.disconnect();
      shown(fn);
    }
  }, { threshold: 0.5 });
  io.observe(node);
}

function seen(node, p) {
  watch(node, function () {
    remember("views", p.campaign);
    report(p, "view");
  });
}

function dismiss(p, node) {
  remember("dismissed", p.campaign);
  report(p, "dismiss");
  node.remove();
  if (node.pad) node.pad.remove();
}

function button(cls, text, onClick, label, to) {
  var b = el("button", cls, text, { type: "button", "aria-label": label }, to);
  b.onclick = onClick;
  return b;
}

function card(p, tag) {
  var id = "mp-" + p.placement, box = el(tag, "mp " + id, "", { "aria-labelledby": id }),
    d = p.banner, g = d && d.goal, t;
  el("p", "mp-h", p.headline, { id: id }, box);
  if (str(p.body)) el("p", "", p.body, 0, box);
  // The ticker: the live member count and the goal, from the banner data in the answer.
  if (d && d.count > 0 && str(d.headline)) { // never "0 members"
    t = el("p", "mp-t", d.headline, 0, box);
    if (g && g.target > 0 && g.progress >= 0 && str(d.message)) {
      progress("span", "mp", d, g, t);
      t.append(d.message);
    }
  }
  el("a", "mp-cta", p.cta.label, { href: p.cta.url }, box).onclick = go.bind(0, p);
  if (p.dismissible && tag == "aside") button("mp-x", "×", function () {
    dismiss(p, box);
  }, close, box);
  return box;
}

// The placements, each drawn by a module of its own, loaded once an answer names it (draw()).
var PLACES = /^(banner|inline|modal|gate)$/;
// What a placement's module gets of this script: the `kit` of the <script> element that loads
// it, with the prompt to draw as `p` and the time it may draw until as `t` (draw(): 0 for a
// holdout's, which every module, since it has had `t`, draws nothing for); a module whose ask
// is seen later than it runs gives back `until` (draw()). Their URLs carry only the kit's
// version (module()), so a module may be a cache's, up to a day older or newer than this script
// (Cache-Control's stale-while-revalidate): change what kit holds, what its functions take and
// what card() draws (the classes a module's CSS styles) only by adding to them, or raise the
// version (tests/goals/test_widget.py holds the names a module may use).
var kit = {
  el: el, card: card, button: button, dismiss: dismiss, seen: seen, close: close, lang: lang, SEL: SEL,
  call: call, str: str, // and the member module's (module("member"))
  watch: watch, // and the inline module's (its `until`)
  data: data, going: 0 // and the checkout module's (`going`: its own)
};

// Draws `p`; or, given `held` (a holdout's report), draws nothing and reports it when the ask
// would have been seen, under the same rules as a view, so the two groups compare. Each
// placement is drawn by its module (/static/prompt-inline.js...), served as this script is,
// which draws when it has run, unless it runs after `t` (2 s on: a late module is a late
// answer, and draws nothing); one that fails to load draws nothing. A holdout's module is
// loaded too (the same URL, so the same cache) with `t` 0, so that every module draws nothing,
// and the holdout is reported only once it has run in time: a module that fails or is late
// sends neither a view nor a holdout, so both groups pass the same gate. It is reported then,
// or once the module's `until` says the ask would have been seen (the inline ask's: once its
// empty slot is on screen).
function draw(p, held) {
  var t = Date.now() + 2e3, s = module(p.placement);
  s.p = p;
  s.t = held ? 0 : t;
  if (held) on(s, "load", function () {
    Date.now() > t || (s.until || shown)(held);
  });
}

// Our module `name` (/static/prompt-NAME.js, served as this script is), which runs once loaded,
// after this, with `kit` as its <script> element's; the placements' run in the order they are
// asked for, whichever arrives first. The query is the kit's version, raised when the core
// stops giving what an earlier module needs (2: each placement's style moved into its module),
// so that this core never runs a cache's older module; an older core asks for the URL without
// it, and runs the newer modules, which take only what every core gives.
function module(name) {
  var s = el("script", "", "", { src: base + "/static/prompt-" + name + ".js?2" });
  s.kit = kit;
  s.async = !PLACES.test(name); // a placement's: in order (before it is in the page, to count)
  return D.head.appendChild(s);
}

function show(d) {
  // A gate's holdout only where the page has an <article> (as its ask).
  (d.holdout || []).forEach(function (h) {
    if (str(h.token) && PLACES.test(h.placement) && (h.placement != "gate" || D.querySelector("article"))) draw(h, function () {
      report(h, "holdout");
    });
  });
  var prompts = (d.prompts || []).filter(function (p) {
    return PLACES.test(p.placement) && str(p.campaign) && str(p.token) && showable(p);
  });
  if (prompts.length) {
    look(); // the look the asks share; each placement's own is its module's
    // The answer lists them in the order of the service's PLACEMENTS (banner, inline, modal,
    // gate): drawn from the last, the inline ask comes before a bar, which sees it (and waits
    // while it is on screen).
    prompts.reverse().forEach(function (p) {
      draw(p); // not forEach's index as `held`
    });
  }
}

// The script's data-NAME, or its <article>'s.
function data(name) {
  var e = me && name in me.dataset ? me : D.querySelector("article[data-" + name + "]");
  return e && e.dataset[name];
}

function start() {
  var s, body, json, seen, token, now = Date.now(), today = iso(now).slice(0, 10),
    oldest = iso(now - 89 * 864e5).slice(0, 10), nav = performance.getEntriesByType("navigation")[0];
  try {
    token = ls.getItem(TOKEN);
    // Its renewal, alongside (the ask does not wait): the member module's.
    if (token && due(token)) module("member");
    s = load();
    // A reload or a step back/forward shows an article already counted: not another read.
    if (!/^(reload|back_forward)$/.test(nav && nav.type)) s.articles[today] = (s.articles[today] || 0) + 1;
    for (var day in s.articles) if (day < oldest) delete s.articles[day];
    body = {
      reader: s.reader, locale: lang, member: token || undefined,
      page: {
        section: (data("section") || "").slice(0, 100) || null, type: "article",
        referrer: D.referrer.slice(0, 2000) || null,
        tags: (data("tags") || "").trim().split(/\s*,\s*/).filter(Boolean).slice(0, 50)
      },
      history: { articles: s.articles }, views: s.views, dismissed: s.dismissed
    };
    // The service refuses a body over 16 KiB (a 413: no ask ever again for this reader):
    // drop the oldest views and dismissals, a few at a time, until it fits.
    while (new Blob([json = JSON.stringify(body)]).size > 16000 && (seen = body.views.length >= body.dismissed.length ? body.views : body.dismissed).length) seen.splice(0, 5);
  } catch (e) {
    return reset(); // not JSON, or not even shaped so that a body can be made of it
  }
  save(s);
  // An error or no answer in 2 s: no ask; a 400 (the page's own fields are kept within the
  // server's limits above, so it is the stored state) a fresh start next time.
  call("/v1/prompt", json, 2000).then(show).catch(function (status) {
    if (status == 400) reset();
  });
}

function ready() {
  if (D.prerendering) on(D, "prerenderingchange", ready, { once: true });
  // A sign-in link lands with #member_token=..., Checkout's success URL with ?session_id=cs_...:
  // the member module keeps the token first (so the new member is not asked), takes it out of
  // the address, and then starts (`go`); a module that fails to load, this page view without.
  else if (/[#&]member_token=|[?&]session_id=cs_/.test(location.href)) {
    var s = module("member");
    s.go = start;
    on(s, "error", start);
  } else start();
}

try {
  ls = localStorage; // throws where storage is blocked
} catch (e) {} // no storage: no reader id, history or caps, so no ask
if (ls) parsed(ready);
