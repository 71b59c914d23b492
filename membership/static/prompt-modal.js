/* membership prompt widget: the modal dialog, loaded by prompt.js (the core) only once an answer names
 * the placement, and served as /static/prompt-modal.js (built of this file alone by
 * scripts/build_widgets.py). It takes what it needs of the core, and the prompt to draw, from
 * the <script> element the core loads it with (`kit`, `p` and `t`: prompt.js's draw()), and
 * draws it at once, its style first (after the core's). It may be a day older or newer than
 * the core (both are cached): it uses only what `var kit` in prompt.js says stays, and
 * draws nothing after `t` (0 for a holdout's, which the core loads to report it alike). */
"use strict";
var D = document, me = D.currentScript, kit = me.kit, el = kit.el;
// After banner.js's BOX_CSS (the core's look()), which gives .mp its colours, padding and font.
var CSS =
  ".mp-over{all:unset;position:fixed;inset:0;display:flex;align-items:center;justify-content:center;background:#0009}" +
  ".mp-modal{position:relative;width:100%;max-width:32rem;margin:1rem}" +
  ".mp-modal .mp-h{margin:0 2rem .25rem 0;font-size:1.25rem;font-weight:700}" +
  ".mp-modal .mp-bar{display:block;height:.375rem;margin:.25rem 0}.mp-modal .mp-cta{display:inline-block}" +
  ".mp-x{position:absolute;top:0;right:0;width:2.5rem;height:2.5rem;border:0;background:none;font-size:1.5rem}";

el("style", "", CSS, 0, D.head);
// The browser's own modal <dialog>: the page behind is inert, focus starts inside and returns
// where it was on close, Escape closes it (as the close button does): a dismissal. Tab and
// Shift+Tab go from one of its two controls to the other (past the last, the browser's would
// leave the page).
function draw(p) {
  var over = el("dialog", "mp-over", "", { "aria-labelledby": "mp-modal" }, D.body),
    box = kit.card(p, "div"), cta = box.querySelector("a"),
    x = kit.button("mp-x", "×", function () { over.close(); }, kit.close, box);
  over.onclose = function () { kit.dismiss(p, over); };
  over.onkeydown = function (e) {
    if (e.key == "Tab") {
      (D.activeElement == x ? cta : x).focus();
      e.preventDefault();
    }
  };
  over.appendChild(box);
  over.showModal();
  kit.seen(box, p);
}

// Too late (after the core's `t`: a late answer), nothing; a core without `t`, at once.
Date.now() > me.t || draw(me.p);
