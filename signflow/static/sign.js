/* The signer's page: start BankID (QR or this device), follow the order, zoom the pages.
   Configuration comes from the page's <script id="sign-config" type="application/json">. */
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const cfg = JSON.parse($("sign-config").textContent);

  // --- the document: zoom ------------------------------------------------------------------
  const ZOOMS = [1, 1.5, 2, 3];
  let zoom = 0;
  const pages = $("pages");
  function setZoom(level) {
    zoom = Math.max(0, Math.min(ZOOMS.length - 1, level));
    for (let i = 0; i < ZOOMS.length; i++) { pages.classList.toggle("zoom-" + (i + 1), i === zoom); }
    // ask for sharper pictures as the pages grow (srcset picks by laid-out width)
    const sizes = Math.round(100 * ZOOMS[zoom]) + "vw";
    for (const img of pages.querySelectorAll("img.page")) { img.sizes = sizes; }
    $("zoom-out").disabled = zoom === 0;
    $("zoom-in").disabled = zoom === ZOOMS.length - 1;
  }
  if (pages) {
    $("zoom-in").addEventListener("click", () => setZoom(zoom + 1));
    $("zoom-out").addEventListener("click", () => setZoom(zoom - 1));
    setZoom(0);
  }

  if (!$("actions")) { return; }

  // --- BankID ------------------------------------------------------------------------------
  const base = cfg.base;
  // the page's own calls name our origin (the server refuses other origins); the document's
  // no-referrer policy alone would make the browser send "Origin: null"
  const SAME = {referrerPolicy: "same-origin", credentials: "same-origin", cache: "no-store"};
  // a phone the server did not know by its user agent: narrow and touched, not a
  // computer's window at 200 % zoom (as narrow, but with a mouse) that wants the QR code
  const phone = cfg.phone || window.matchMedia("(max-width: 40rem) and (pointer: coarse)").matches;
  $("start-phone").hidden = !phone;
  $("start-computer").hidden = phone;
  let qrTimer = null, pollTimer = null, open = false, flow = "qr", launching = false;
  let failures = 0, failingSince = 0;
  const RETRY_CAP_MS = 8000, GIVE_UP_MS = 180000;  // a BankID order lives three minutes

  function stop() { clearInterval(qrTimer); clearTimeout(pollTimer); qrTimer = pollTimer = null; }
  // the region stays in the page, empty when there is nothing to say: one that appears
  // with its text at once is often not read out
  function show(msg) { $("message").textContent = msg || ""; }
  // the open order's own controls exist only while it is open, and only for its flow
  function controls(visible) {
    $("qr-part").hidden = !(visible && flow === "qr");
    $("here-part").hidden = !(visible && flow === "same_device");
    $("launch").hidden = $("launch").getAttribute("href") === "#";
    $("restart").hidden = !visible;
    if (!(visible && flow === "qr")) { $("qr").removeAttribute("src"); }
  }
  function primary() { return phone ? $("bankid-open") : $("bankid"); }
  // hiding the control that has the focus drops it to the page's start: put it back
  // where a keyboard user goes on (only if it was here, so a reader elsewhere stays put)
  function focusHere() {
    const here = document.activeElement;
    return !here || here === document.body || $("signing").contains(here);
  }
  function ended(msg) {
    const refocus = focusHere();
    open = false; stop(); controls(false); show(msg);
    $("progress").hidden = true; $("actions").hidden = false;
    if (refocus) { primary().focus(); }
  }
  function errorText(body) {
    return (body && body.error && body.error.message) || cfg.failed;
  }
  async function call(url, options) {
    // [response or null (no answer), parsed JSON body or null]
    try {
      const r = await fetch(url, Object.assign({headers: {"Accept": "application/json"}}, SAME,
                                               options || {}));
      let body = null;
      try { body = await r.json(); } catch (e) { body = null; }
      return [r, body];
    } catch (e) {
      return [null, null];
    }
  }
  // a lost answer or a server that is restarting says nothing about the order itself
  function passing(r, body) {
    if (r === null) { return true; }
    if ([500, 503, 504, 429].includes(r.status)) { return true; }
    return r.status >= 500 && !(body && body.error);  // a proxy's error page, not ours
  }
  function retry() {
    failures += 1;
    failingSince = failingSince || Date.now();
    if (Date.now() - failingSince > GIVE_UP_MS) { ended(cfg.unreachable); return; }
    show(cfg.retrying);
    pollTimer = setTimeout(poll, Math.min(1000 * 2 ** (failures - 1), RETRY_CAP_MS));
  }
  async function poll() {
    pollTimer = null;
    const [r, body] = await call(base + "?flow=" + flow);
    if (!open) { return; }
    if (passing(r, body)) { retry(); return; }
    failures = 0; failingSince = 0;
    if (r.status === 404 || r.status === 409 || r.status === 410) {
      // the link or the round ended meanwhile: the page itself says how
      open = false; stop(); location.reload(); return;
    }
    if (!r.ok) { ended(errorText(body)); return; }
    if (body.status === "complete") { open = false; stop(); location.reload(); return; }
    if (body.status === "failed") { ended(body.message || ""); return; }
    show(body.message || "");
    pollTimer = setTimeout(poll, 2000);
  }
  function launch(link) {
    // leaving for the app is not leaving the page: keep the order
    launching = true; location.href = link;
    setTimeout(() => { launching = false; }, 2000);
  }
  async function start(wanted) {
    stop(); open = false; flow = wanted; failures = 0; failingSince = 0;
    const refocus = focusHere();
    const query = "?flow=" + wanted + "&device=" + (phone ? "phone" : "computer");
    const [r, body] = await call(base + query, {method: "POST"});
    if (r === null || !r.ok) { ended(r === null ? cfg.unreachable : errorText(body)); return; }
    $("actions").hidden = true; $("progress").hidden = false;
    open = true;
    show(body.message);
    $("launch").setAttribute("href", body.app_link || "#");
    $("switch-here").hidden = !body.app_link;
    controls(true);
    if (refocus) { $("restart").focus(); }
    if (flow === "qr") {
      const refresh = () => { $("qr").src = base + "/qr.svg?t=" + Date.now(); };
      refresh(); qrTimer = setInterval(refresh, 1000);
    } else if (body.app_link) {
      launch(body.app_link);
    }
    pollTimer = setTimeout(poll, 1000);
  }
  for (const button of document.querySelectorAll("button[data-flow]")) {
    button.addEventListener("click", () => start(button.dataset.flow));
  }
  $("launch").addEventListener("click", () => { launching = true; });
  function cancelOrder() {
    if (open && !launching) {
      // keepalive: the request outlives the page; a beacon could not name our origin
      fetch(base + "/cancel", Object.assign({method: "POST", keepalive: true}, SAME))
        .catch(() => {});
    }
    if (!launching) { open = false; }
  }
  $("restart").addEventListener("click", () => {
    stop(); cancelOrder(); open = false; controls(false); show("");
    $("progress").hidden = true; $("actions").hidden = false;
    primary().focus();
  });
  window.addEventListener("pagehide", cancelOrder);
  // back from the app (the order's returnUrl ends in #bankid): follow the open order
  if (location.hash === "#bankid" && cfg.open_order) {
    flow = "same_device"; open = true;
    $("actions").hidden = true; $("progress").hidden = false;
    controls(true); poll();
  }
})();
