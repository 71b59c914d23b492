/* membership prompt widget: the gate over the article, loaded by prompt.js (the core) only once an answer names
 * the placement, and served as /static/prompt-gate.js (built of this file alone by
 * scripts/build_widgets.py). It takes what it needs of the core, and the prompt to draw, from
 * the <script> element the core loads it with (`kit`, `p` and `t`: prompt.js's draw()), and
 * draws it at once, its style first (after the core's). It may be a day older or newer than
 * the core (both are cached): it uses only what `var kit` in prompt.js says stays, and
 * draws nothing after `t` (0 for a holdout's, which the core loads to report it alike). */
"use strict";
var D = document, me = D.currentScript, kit = me.kit, el = kit.el;
// After banner.js's BOX_CSS (the core's look()), which gives .mp its colours, padding and font.
var CSS =
  ".mp-gate .mp-h{margin:0 2rem .25rem 0;font-size:1.25rem;font-weight:700}" +
  ".mp-gate .mp-bar{display:block;height:.375rem;margin:.25rem 0}.mp-gate .mp-cta{display:inline-block}" +
  ".mp-later{display:inline-block;padding:.5rem 1rem;border:0;background:none;color:inherit;font:inherit;" +
  "text-decoration:underline}.mp-gated{position:relative}" +
  ".mp-cover{position:absolute;inset:0;z-index:99999;background:linear-gradient(#fffc,#fff 9rem)}" +
  ".mp-cover .mp{position:sticky;top:20vh;max-width:32rem;margin:8rem auto 0}";

// Its "Maybe later", in the page's language (prompt.js's `lang`) or English.
var LATER = { en: "Maybe later", uk: "Можливо, пізніше" };
var later = LATER[kit.lang] || LATER.en;

el("style", "", CSS, 0, D.head);
// An overlay over the <article>, positioned inside it (nothing moves); what it covers is
// inert until "Maybe later" (a dismissible gate's).
function draw(p) {
  var art = D.querySelector("article"), over = el("div", "mp-cover"),
    box = kit.card(p, "div"), covered = art ? [].slice.call(art.children) : [];
  function inert(yes) {
    covered.forEach(function (c) { c.inert = yes; }); // covered text cannot be reached either
  }
  if (!art) return;
  box.setAttribute("role", "dialog");
  if (p.dismissible) kit.button("mp-later", later, function () {
    inert(false);
    art.classList.remove("mp-gated");
    kit.dismiss(p, over);
  }, later, box);
  inert(true);
  art.classList.add("mp-gated"); // position:relative, for the overlay: nothing moves
  art.appendChild(over).appendChild(box);
  kit.seen(box, p);
}

// Too late (after the core's `t`: a late answer), nothing; a core without `t`, at once.
Date.now() > me.t || draw(me.p);
