/* Staff pages: the session ends after SIGNFLOW_SESSION_IDLE_MINUTES without a request.
   Typing in a page is no request, so the page tells the server now and then that its
   user is there; left alone, it warns before the end; and after the end it keeps what
   was typed: sign in again in another tab, press the button, and the page's forms get
   the new session's CSRF token (nothing typed is lost). */
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
  let lastSeen = Date.now(), warnTimer = null, endTimer = null, ended = false;

  function schedule() {
    clearTimeout(warnTimer); clearTimeout(endTimer);
    warnTimer = setTimeout(warn, idle - warnBefore);
    endTimer = setTimeout(end, idle);
  }
  function warn() {
    if (ended) { return; }
    box.hidden = false;
    stay.focus();
  }
  function end() {
    ended = true;
    text.textContent = text.dataset.ended;
    stay.textContent = stay.dataset.ended;
    login.href = "/login?next=" + encodeURIComponent("/rounds");
    login.hidden = false;
    box.hidden = false;
  }
  async function alive() {
    try {
      const r = await fetch("/account/alive", {credentials: "same-origin", cache: "no-store",
                                                headers: {"Accept": "application/json"}});
      if (!r.ok) { if (r.status === 401) { end(); } return; }
      const body = await r.json();
      document.querySelectorAll("input[name=csrf_token]").forEach(function (i) {
        i.value = body.csrf_token;
      });
      lastSeen = Date.now();
      if (ended || !box.hidden) {
        ended = false; box.hidden = true;
        text.textContent = text.dataset.warn; stay.textContent = stay.dataset.warn;
        login.hidden = true;
      }
      schedule();
    } catch (e) { /* no answer: the warning stays, and the button can be pressed again */ }
  }
  text.dataset.warn = text.textContent;
  stay.dataset.warn = stay.textContent;
  stay.addEventListener("click", alive);
  // (not "change": moving the focus to the warning's button fires it on the field left)
  ["input", "keydown", "click"].forEach(function (type) {
    document.addEventListener(type, function (ev) {
      if (ev.target === stay || ended) { return; }
      if (Date.now() - lastSeen > PING_EVERY) { lastSeen = Date.now(); alive(); }
    }, {passive: true});
  });
  schedule();
})();
