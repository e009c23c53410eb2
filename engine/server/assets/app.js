// medic's web view: live updates, countdowns. Pages work without this script; with it,
// the part of the page marked [data-live] follows the journal over Server-Sent Events,
// falls back to polling when the stream drops, and always says which of the two it is.
(function () {
  "use strict";
  var POLL_MS = 5000;

  function hhmmss(d) { return d.toTimeString().slice(0, 8); }

  function countdowns() {
    var now = Date.now();
    document.querySelectorAll("[data-deadline]").forEach(function (el) {
      var left = Math.round((Number(el.dataset.deadline) - now) / 1000);
      if (left <= 0) { el.textContent = "deadline passed: the default applies now"; return; }
      var h = Math.floor(left / 3600), m = Math.floor((left % 3600) / 60), s = left % 60;
      el.textContent = "in " + (h ? h + " h " : "") + (h || m ? m + " min " : "") + s + " s";
    });
  }

  function start(root) {
    var status = document.getElementById("live-status");
    var es = null, poller = null, timer = null, busy = false;

    function say(state, text) {
      if (!status) return;
      status.dataset.state = state;
      status.textContent = text;
    }

    // A person typing a comment keeps their text: refresh once they are done.
    function typing() {
      var a = document.activeElement;
      if (a && root.contains(a) && /^(TEXTAREA|INPUT|SELECT)$/.test(a.tagName)) return true;
      return Array.prototype.some.call(root.querySelectorAll("textarea"), function (t) { return t.value !== ""; });
    }

    function refresh() {
      if (timer) return;
      // Appends come in bursts: one re-read per burst.
      timer = setTimeout(function () { timer = null; load(); }, 150);
    }

    function load() {
      if (busy) { refresh(); return Promise.resolve(true); }
      if (typing()) { setTimeout(refresh, 1000); return Promise.resolve(true); }
      busy = true;
      var open = Array.prototype.map.call(root.querySelectorAll("details[open][id]"), function (d) { return d.id; });
      return fetch(root.dataset.fragment, { headers: { "HX-Request": "true" }, credentials: "same-origin", cache: "no-store" })
        .then(function (r) {
          if (r.redirected && r.url.indexOf("/ui/signin") >= 0) { window.location.href = r.url; return false; }
          if (!r.ok) throw new Error("HTTP " + r.status);
          return r.text().then(function (html) {
            root.innerHTML = html;
            open.forEach(function (id) { var d = document.getElementById(id); if (d) d.open = true; });
            if (window.htmx) window.htmx.process(root);
            countdowns();
            return true;
          });
        })
        .catch(function () { return false; })
        .then(function (ok) { busy = false; return ok; });
    }

    function poll() {
      if (poller) return;
      poller = setInterval(function () {
        load().then(function (ok) {
          if (ok) {
            say("polling", "Not live: updated " + hhmmss(new Date()) + " by checking every " + POLL_MS / 1000 + " s; reconnecting");
            if (!es || es.readyState === 2) connect();
          } else {
            say("down", "Not live: medic is unreachable (last tried " + hhmmss(new Date()) + "); what you see may be out of date");
          }
        });
      }, POLL_MS);
    }

    function connect() {
      if (es) es.close();
      es = new EventSource(root.dataset.events);
      es.addEventListener("hello", function () {
        say("live", "Live: updates as they happen");
        if (poller) { clearInterval(poller); poller = null; refresh(); }
      });
      es.addEventListener("append", refresh);
      es.addEventListener("resync", refresh);
      es.onerror = function () {
        say("down", "Not live: the update stream dropped at " + hhmmss(new Date()) + "; checking every " + POLL_MS / 1000 + " s");
        poll();
      };
    }

    say("connecting", "Connecting to live updates…");
    connect();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var root = document.querySelector("[data-live]");
    if (root && window.EventSource && window.fetch) start(root);
    countdowns();
    setInterval(countdowns, 1000);
  });
})();
