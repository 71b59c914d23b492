/* membership prompt widget: Stripe Checkout for a call to action, loaded by prompt.js (the core)
 * only once the reader clicks one (prompt.js's go()), and served as /static/prompt-checkout.js
 * (built of this file alone by scripts/build_widgets.py), as the placement modules are. It takes
 * what it needs of the core, and the prompt clicked, from the <script> element the core loads
 * it with (`kit` and `p`), and may be a day older or newer than the core (both are cached): it
 * uses only what `var kit` in prompt.js says stays.
 * It asks POST /v1/checkout for the page's plan, with the prompt's token (the conversion is
 * credited to its variant), and goes to the session's URL; a failure of any kind follows the
 * link (the variant's cta_url or JOIN_URL), as the core does when this fails to load, so a
 * click is never lost. One checkout at a time, however often the reader clicks (each click
 * runs this again): `kit.going` while one is under way. */
"use strict";
var D = document, me = D.currentScript, kit = me.kit, p = me.p;

function checkout() {
  kit.going = 1;
  kit.call("/v1/checkout", JSON.stringify({ plan: kit.data("plan") || "monthly", locale: kit.lang, token: p.token }), 1e4)
    .catch(Boolean).then(function (d) {
      kit.going = 0; // back from Checkout (the back/forward cache), the link works again
      location.href = /^https:\/\//.test(d && d.url) ? d.url : p.cta.url;
    });
}

kit.going || checkout();
