/* membership prompt widget: the inline ask, loaded by prompt.js (the core) only once an answer names
 * the placement, and served as /static/prompt-inline.js (built of this file alone by
 * scripts/build_widgets.py). It takes what it needs of the core, and the prompt to draw, from
 * the <script> element the core loads it with (`kit`, `p` and `t`: prompt.js's draw()), and
 * draws it at once, its style first. It may be a day older or newer than the core (both are cached): it uses
 * only what `var kit` in prompt.js says stays, and draws nothing after `t` (0 for a holdout's,
 * which the core loads to report it alike). The core runs it before any other placement's
 * module, so that a bar sees it (and waits while it is on screen). */
"use strict";
var D = document, me = D.currentScript, kit = me.kit;
// After banner.js's BOX_CSS (the core's look()), which gives .mp its colours, padding and font;
// each placement's rules under its own class, so that none changes another's ask on the page.
var CSS =
  ".mp-inline{position:relative}.mp-inline .mp-h{margin:0 2rem .25rem 0;font-size:1.25rem;font-weight:700}" +
  ".mp-inline .mp-bar{display:block;height:.375rem;margin:.25rem 0}.mp-inline .mp-cta{display:inline-block}" +
  ".mp-x{position:absolute;top:0;right:0;width:2.5rem;height:2.5rem;border:0;background:none;font-size:1.5rem}";

// The slot, while it is below the fold (or the page reserved its space): filling it then moves
// nothing the reader is looking at. Otherwise this page view goes without it.
function slot() {
  var s = D.querySelector("[data-membership-prompt]");
  return s && (s.getBoundingClientRect().top >= innerHeight || s.offsetHeight) && s;
}

// A holdout's ask would have been seen once its slot (empty) is on screen, not when this has
// run: the core reports it then (`until`), as counting readers who never reach the slot would
// bias the lift.
me.until = function (fn) {
  var s = slot();
  if (s) kit.watch(s, fn);
};

kit.el("style", "", CSS, 0, D.head);
function draw(p) {
  var s = slot();
  if (s) kit.seen(s.appendChild(kit.card(p, "aside")), p);
}

// Too late (after the core's `t`: a late answer), nothing; a core without `t`, at once.
Date.now() > me.t || draw(me.p);
