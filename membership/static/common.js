/* What both widget scripts share; not served alone. scripts/build_widgets.py builds each served
 * script as one function of its parts, in this order:
 *   /static/banner.js = common.js + banner.js              (the member-count boxes only)
 *   /static/prompt.js = common.js + banner.js + prompt.js  (the asks' core, and the boxes too)
 * so an article page embeds one script, and each part is written once. (A placement's module,
 * prompt-banner.js..., is built alone and gets these helpers from prompt.js: its `kit`.) */
"use strict";
var D = document, me = D.currentScript, base = new URL(me ? me.src : "/", location.href).origin;

// A new element with its class, text (server text is never parsed as HTML) and attributes,
// appended to `to` when given (a <style> is checked by the CSP once it is in).
function el(tag, cls, text, attrs, to) {
  var e = D.createElement(tag);
  e.className = cls;
  if (text) e.textContent = text;
  for (var k in attrs) e.setAttribute(k, attrs[k]);
  return to ? to.appendChild(e) : e;
}

function on(target, type, fn, opts) {
  target.addEventListener(type, fn, opts);
}

// `fn` once the document is parsed (at once if it is).
function parsed(fn) {
  if (D.readyState == "loading") on(D, "DOMContentLoaded", fn);
  else fn();
}

// The language of a tag (uk-UA: uk), or the page's; "en" when neither has one.
function language(tag) {
  tag = /^[a-z]{2,8}/i.exec(tag || D.documentElement.lang);
  return tag ? tag[0].toLowerCase() : "en";
}

function str(s) {
  return typeof s == "string" && s != "";
}

// Copy with a headline and a call to action that links over http(s): worth showing.
function showable(d) {
  return d && str(d.headline) && d.cta && str(d.cta.label) && /^https?:\/\//.test(d.cta.url);
}

// The member count `d.count` toward the goal `g` as a progress bar (`cls`-bar around `cls`-fill).
function progress(tag, cls, d, g, to) {
  var aria = { role: "progressbar", "aria-valuemin": 0, "aria-valuemax": g.target,
    "aria-valuenow": Math.min(d.count, g.target), "aria-label": d.message };
  if (str(d.count_display) && str(g.target_display))
    aria["aria-valuetext"] = d.count_display + " / " + g.target_display;
  el(tag, cls + "-fill", "", 0, el(tag, cls + "-bar", "", aria, to)).style.transform =
    "scaleX(" + Math.max(0, Math.min(1, g.progress)) + ")";
}

// JSON from the service, or a rejection (the status for an error answer) on any failure; the
// time limit covers reading the body too. An event (`keep`) is sent even as the page goes away
// (keepalive: what navigator.sendBeacon does), as text/plain (a string body's own type), so
// with no preflight; any other body as JSON.
function call(path, body, ms, keep) {
  return fetch(base + path, {
    method: body ? "POST" : "GET", credentials: "omit", signal: AbortSignal.timeout(ms), body: body,
    keepalive: keep, headers: body && !keep ? { "Content-Type": "application/json" } : {}
  }).then(function (r) {
    if (!r.ok) throw r.status;
    return r.json();
  });
}
