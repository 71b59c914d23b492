/* membership prompt widget: the bottom bar, loaded by prompt.js (the core) only once an answer names
 * the placement, and served as /static/prompt-banner.js (built of this file alone by
 * scripts/build_widgets.py). It takes what it needs of the core, and the prompt to draw, from
 * the <script> element the core loads it with (`kit`, `p` and `t`: prompt.js's draw()), and
 * draws it at once, its style first (after the core's). It may be a day older or newer than
 * the core (both are cached): it uses only what `var kit` in prompt.js says stays, and
 * draws nothing after `t` (0 for a holdout's, which the core loads to report it alike). */
"use strict";
var D = document, me = D.currentScript, kit = me.kit, el = kit.el;
var SEL = kit.SEL;
// After banner.js's BOX_CSS (the core's look()), which gives .mp its colours, padding and font.
var CSS =
  ".mp-banner{position:fixed;inset:auto 0 0;z-index:99999;max-height:15vh;overflow:auto;padding:.5rem 1rem;display:grid;grid-template-columns:1fr auto;gap:0 1rem;font-size:.875rem;line-height:1.25}" +
  ".mp-banner p{margin:0}" +
  ".mp-banner .mp-h{margin:0 1.5rem 0 0;font-size:.9375rem;font-weight:700}" +
  ".mp-banner .mp-bar{width:3rem;height:.375rem;display:inline-block;margin:0 .5rem;vertical-align:middle}" +
  ".mp-x{position:absolute;top:0;right:0;width:2.5rem;height:2.5rem;border:0;background:none;font-size:1.5rem}" +
  ".mp-banner .mp-cta{grid-column:2;grid-row:1/9;align-self:end}.mp-pad{height:15vh}" +
  ".mp[hidden]{display:none}";

// One count per viewport: while an inline ask is on screen the bar waits; while the page's
// own member count (banner.js's box) is, the bar's ticker does (hidden in place: nothing moves).
function wait(bar) {
  var t = bar.querySelector(".mp-t"), io = new IntersectionObserver(function (entries) {
    entries.forEach(function (e) { e.target.mpIn = e.isIntersecting; });
    bar.hidden = inView(".mp-inline");
    if (t) t.style.visibility = inView(SEL) ? "hidden" : ""; // SEL: the count boxes
  });
  function inView(sel) {
    return [].some.call(D.querySelectorAll(sel), function (b) { return b.mpIn; });
  }
  // the bar too, so that this decides at once even on a page with neither
  D.querySelectorAll(".mp-inline,.mp-banner," + SEL).forEach(function (b) {
    io.observe(b);
  });
}

el("style", "", CSS, 0, D.head);
// Fixed, at most 15% of the viewport high: nothing on the page moves, and a spacer as high at
// the end of the page lets its last line scroll above the bar (gone with it). The core draws
// it after any inline ask, which it waits for: hidden until wait() has seen whether that is on
// screen, so it is never reported seen (kit.seen) in a frame before it would be hidden.
function draw(p) {
  var bar = kit.card(p, "aside");
  bar.hidden = true;
  bar.pad = el("div", "mp-pad", "", 0, D.body);
  kit.seen(D.body.appendChild(bar), p);
  wait(bar);
}

// Too late (after the core's `t`: a late answer), nothing; a core without `t`, at once.
Date.now() > me.t || draw(me.p);
