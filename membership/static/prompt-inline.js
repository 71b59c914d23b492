/* membership prompt widget: the inline ask, loaded by prompt.js (the core) only once an answer names
 * the placement, and served as /static/prompt-inline.js (built of this file alone by
 * scripts/build_widgets.py). It takes what it needs of the core, and the prompt to draw, from
 * the <script> element the core loads it with (`kit`, `p` and `t`: prompt.js's draw()), and
 * draws it at once. It may be a day older or newer than the core (both are cached): it uses
 * only what `var kit` in prompt.js says stays, and draws nothing after `t` (0 for a holdout's,
 * which the core loads to report it alike). The core runs it before any other placement's
 * module, so that a bar sees it (and waits while it is on screen). */
"use strict";
var D = document, me = D.currentScript, kit = me.kit;

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

function draw(p) {
  var s = slot();
  if (s) kit.seen(s.appendChild(kit.card(p, "aside")), p);
}

// Too late (after the core's `t`: a late answer), nothing; a core without `t`, at once.
Date.now() > me.t || draw(me.p);
