/* Staff pages: the session ends after SIGNFLOW_SESSION_IDLE_MINUTES without a request.
   Typing in a page is no request, so the page tells the server now and then that its
   user is there; left alone, it warns before the end (after asking the server, since
   another tab may have kept the session going); and after the end it keeps what was
   typed: sign in again in another tab, press the button, and the page's forms get the
   new session's CSRF token (nothing typed is lost). */
(function () {
  "use strict";
  const idle = Number(document.body.dataset.sessionIdle || 0) * 1000;
  const box = document.getElementById("session-warning");
  if (!idle || !box) { return; }
  const text = document.getElementById("session-warning-text");
  const stay = document.getElementById("session-stay");
  const login = document.getElementById("session-login");
  const warnBefore = Math.min(120000, idle / 4);
  const PING_EVERY = Math.min(60000, idle / 4);
  const ASK = {credentials: "same-origin", cache: "no-store",
               headers: {"Accept": "application/json"}};
  let lastSeen = Date.now(), warnTimer = null, endTimer = null, ended = false;
  let focusBefore = null;

  function schedule(left) {
    clearTimeout(warnTimer); clearTimeout(endTimer);
    warnTimer = setTimeout(warn, Math.max(0, left - warnBefore));
    endTimer = setTimeout(end, left);
  }
  // how long the session has left, by the server (null: no answer; 0: it has ended)
  async function peek() {
    try {
      const r = await fetch("/account/alive?peek=1", ASK);
      if (r.status === 401) { return 0; }
      if (!r.ok) { return null; }
      return (await r.json()).seconds_left * 1000;
    } catch (e) { return null; }
  }
  async function warn() {
    if (ended) { return; }
    const left = await peek();
    if (left === 0) { end(); return; }
    if (left !== null && left > warnBefore + 5000) { schedule(left); return; }  // kept going
    focusBefore = document.activeElement;
    box.hidden = false;
    stay.focus();
  }
  async function end() {
    if (ended) { return; }
    const left = await peek();
    if (left) { schedule(left); return; }  // another tab kept it going (null: say it ended)
    ended = true;
    text.textContent = text.dataset.ended;
    stay.textContent = stay.dataset.ended;
    login.href = "/login?next=" + encodeURIComponent("/rounds");
    login.hidden = false;
    box.hidden = false;
  }
  async function alive(fromButton) {
    try {
      const r = await fetch("/account/alive", ASK);
      if (!r.ok) { if (r.status === 401) { end(); } return; }
      const body = await r.json();
      document.querySelectorAll("input[name=csrf_token]").forEach(function (i) {
        i.value = body.csrf_token;
      });
      const meta = document.querySelector("meta[name=csrf-token]");
      if (meta) { meta.content = body.csrf_token; }
      lastSeen = Date.now();
      if (ended || !box.hidden) {
        ended = false; box.hidden = true;
        text.textContent = text.dataset.warn; stay.textContent = stay.dataset.warn;
        login.hidden = true;
        if (fromButton && focusBefore && document.contains(focusBefore)) {
          focusBefore.focus();  // back where the person was
        }
      }
      schedule(body.seconds_left * 1000);
    } catch (e) { /* no answer: the warning stays, and the button can be pressed again */ }
  }
  text.dataset.warn = text.textContent;
  stay.dataset.warn = stay.textContent;
  stay.addEventListener("click", function () { alive(true); });
  // (not "change": moving the focus to the warning's button fires it on the field left)
  ["input", "keydown", "click"].forEach(function (type) {
    document.addEventListener(type, function (ev) {
      if (ev.target === stay || ended) { return; }
      if (Date.now() - lastSeen > PING_EVERY) { lastSeen = Date.now(); alive(false); }
    }, {passive: true});
  });
  schedule(idle);
})();
