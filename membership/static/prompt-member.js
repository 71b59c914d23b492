/* membership prompt widget: the member token's arrival and renewal, loaded by prompt.js (the core)
 * only when the page needs it, and served as /static/prompt-member.js (built of this file alone
 * by scripts/build_widgets.py), as the placement modules are. It takes what it needs of the core
 * from the <script> element the core loads it with (`kit` and, for an arrival, `go`: prompt.js's
 * ready() and start()), and may be a day older or newer than the core (both are cached): it uses
 * only what `var kit` in prompt.js says stays.
 * - An arrival (`go` given): a sign-in link's #member_token=... is kept; Checkout's success URL's
 *   ?session_id=cs_... is exchanged for the member's token (the session proves the payment
 *   before the webhook has come); either is taken out of the address (a reload must not ask
 *   again), and then `go` (the core's start: the new member is not asked). A Checkout return
 *   without a token (a payment still processing, or no answer in 10 s) asks nothing on that
 *   page view: the reader has just been through Checkout; the next page view asks as before.
 * - A renewal (no `go`: the stored token ends within a day): a fresh one. Refused (401, or 400:
 *   not a token), it is dropped and the lapsed member is asked again; on a network error it is
 *   kept for the next page view. */
"use strict";
var D = document, me = D.currentScript, kit = me.kit, go = me.go;
var TOKEN = "member_token";

function keep(token) {
  try {
    token ? localStorage.setItem(TOKEN, token) : localStorage.removeItem(TOKEN);
  } catch (e) {}
}

// The token in the service's answer kept, if it has one.
function kept(d) {
  if (kit.str(d.token)) keep(d.token);
}

function arrive() {
  var u = new URL(location.href), h = new URLSearchParams(u.hash.slice(1)), t = h.get(TOKEN),
    sid = u.searchParams.get("session_id");
  sid = /^cs_/.test(sid) && sid; // Checkout's ids only: a page's own session_id is its own
  if (t) {
    keep(t);
    h.delete(TOKEN);
    u.hash = h;
  }
  if (sid) u.searchParams.delete("session_id");
  if (t || sid) history.replaceState(history.state, "", u);
  if (sid) kit.call("/v1/member/token?session_id=" + encodeURIComponent(sid), null, 1e4).then(function (d) {
    kept(d);
    go();
  }, Boolean);
  else go();
}

function renew() {
  kit.call("/v1/member/token/refresh", JSON.stringify({ token: localStorage.getItem(TOKEN) }), 5e3)
    .then(kept, function (status) {
      if (status == 401 || status == 400) keep();
    });
}

go ? arrive() : renew();
