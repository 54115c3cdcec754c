// Staff sign-in with BankID: QR code on a computer, the app on a phone,
// polling with backoff (a 503 while the database restarts is not the end), cancel.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const card = $("bankid-card");
  if (!card) { return; }
  const base = "/login/bankid";
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const phone = JSON.parse(card.dataset.phone) || window.matchMedia("(max-width: 40rem)").matches;
  $("start-phone").hidden = !phone;
  $("start-computer").hidden = phone;
  let qrTimer = null, pollTimer = null, open = false, flow = "qr", launching = false, misses = 0;

  function post(path, body, extra) {
    return fetch(base + path, Object.assign({
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "Accept": "application/json",
                "X-CSRFToken": csrf},
      body: JSON.stringify(body || {}),
    }, extra || {}));
  }
  function stop() { clearInterval(qrTimer); clearTimeout(pollTimer); qrTimer = pollTimer = null; }
  function show(msg) { $("message").textContent = msg; }
  function refuse(msg) { $("refused").textContent = msg; $("refused").hidden = !msg; }
  // the open order's own controls exist only while it is open, and only for its flow
  function controls(visible) {
    $("qr-part").hidden = !(visible && flow === "qr");
    $("here-part").hidden = !(visible && flow === "same_device");
    $("launch").hidden = $("launch").getAttribute("href") === "#";
    $("cancel").hidden = !visible;
    if (!(visible && flow === "qr")) { $("qr").removeAttribute("src"); }
  }
  function primary() { return phone ? $("bankid-open") : $("bankid"); }
  function ended(msg) {
    const hadFocus = card.contains(document.activeElement) || document.activeElement === document.body;
    open = false; stop(); controls(false); show(msg);
    $("progress").hidden = !msg; $("actions").hidden = false;
    if (hadFocus) { primary().focus(); }  // keyboard users are not left on a hidden control
  }
  function later(ms) { pollTimer = setTimeout(poll, ms); }
  async function poll() {
    let r, body;
    try {
      r = await post("/status", {flow: flow});
      body = await r.json();
    } catch (e) {
      r = null;
    }
    if (!open) { return; }
    if (!r || r.status >= 500 && r.status !== 502) {
      // the service or the network stumbled: try again, each time a little later
      misses += 1; later(Math.min(2000 * Math.pow(2, misses), 15000)); return;
    }
    misses = 0;
    if (!r.ok) { ended(body.error ? body.error.message : ""); return; }
    if (body.status === "complete") { open = false; stop(); location.assign(body.redirect); return; }
    if (body.status === "unknown") { ended(""); refuse(body.message); return; }
    if (body.status === "failed") { ended(body.message || ""); return; }
    show(body.message || "");
    later(2000);
  }
  function launch(link) {
    // leaving for the app is not leaving the page: keep the order
    launching = true; location.href = link;
    setTimeout(() => { launching = false; }, 2000);
  }
  async function start(wanted) {
    stop(); open = false; flow = wanted; refuse("");
    let r, body;
    try {
      r = await post("", {flow: wanted, device: phone ? "phone" : "computer",
                          next: card.dataset.next});
      body = await r.json();
    } catch (e) {
      ended(""); refuse($("message").dataset.offline); return;
    }
    if (!r.ok) { ended(body.error ? body.error.message : ""); return; }
    $("actions").hidden = true; $("progress").hidden = false;
    open = true; misses = 0;
    show(body.message);
    $("launch").setAttribute("href", body.app_link || "#");
    $("switch-here").hidden = !body.app_link;
    controls(true);
    $("cancel").focus();
    if (flow === "qr") {
      const refresh = () => { $("qr").src = base + "/qr.svg?t=" + Date.now(); };
      refresh(); qrTimer = setInterval(refresh, 1000);
    } else if (body.app_link) {
      launch(body.app_link);
    }
    later(1000);
  }
  for (const button of card.querySelectorAll("button[data-flow]")) {
    button.addEventListener("click", () => start(button.dataset.flow));
  }
  $("launch").addEventListener("click", () => { launching = true; });
  const cancelOrder = () => {
    if (open && !launching) { post("/cancel", {}, {keepalive: true}); }
    if (!launching) { open = false; }
  };
  $("cancel").addEventListener("click", () => {
    stop(); cancelOrder(); open = false; controls(false); show("");
    $("progress").hidden = true; $("actions").hidden = false;
    primary().focus();
  });
  window.addEventListener("pagehide", cancelOrder);
  // back from the app (the order's returnUrl ends in #bankid): follow the open order
  if (location.hash === "#bankid" && JSON.parse(card.dataset.resume)) {
    flow = "same_device"; open = true;
    $("actions").hidden = true; $("progress").hidden = false;
    controls(true); poll();
  }
})();
