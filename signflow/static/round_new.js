/* The new-round form, enhanced: drag and drop with page images, signer rows that move
   without a reload, and the same checks as the server before anything is sent.
   Without this script the form still works: the server checks it and the row buttons
   submit the form. */
(function () {
  "use strict";
  var form = document.getElementById("round-form");
  if (!form) { return; }
  var msg = JSON.parse(form.getAttribute("data-messages") || "{}");
  var workflows = JSON.parse(form.getAttribute("data-workflows") || "{}");
  var maxBytes = parseInt(form.getAttribute("data-max-bytes"), 10) || 0;
  var rowsBox = document.getElementById("signer-rows");
  var template = document.getElementById("signer-row-template");
  var summary = document.getElementById("error-summary");
  var fileInput = document.getElementById("document");
  var drop = document.getElementById("dropzone");
  var thumbs = document.getElementById("thumbs");
  var thumbsStatus = document.getElementById("thumbs-status");
  // read when sent: static/staff.js renews it after the person signs in again
  function csrf() { return (document.querySelector("meta[name=csrf-token]") || {}).content || ""; }
  var fileOk = null;  // null: not checked yet; true/false: the server's answer
  form.noValidate = true;

  /* ---- errors next to fields ---- */
  function errorNode(input) { return document.getElementById(input.id + "-error"); }
  function describe(input, withError) {
    var ids = (input.getAttribute("aria-describedby") || "").split(" ").filter(function (x) {
      return x && x !== input.id + "-error";
    });
    if (withError) { ids.push(input.id + "-error"); }
    if (ids.length) { input.setAttribute("aria-describedby", ids.join(" ")); }
    else { input.removeAttribute("aria-describedby"); }
  }
  function setError(input, text) {
    var node = errorNode(input);
    if (!node) { return; }
    node.textContent = text || "";
    node.hidden = !text;
    if (text) { input.setAttribute("aria-invalid", "true"); }
    else { input.removeAttribute("aria-invalid"); }
    describe(input, !!text);
  }

  /* ---- checks (the server makes the same ones) ---- */
  function luhn(ten) {
    var sum = 0;
    for (var i = 0; i < 10; i++) {
      var n = parseInt(ten.charAt(i), 10) * (i % 2 === 0 ? 2 : 1);
      sum += n > 9 ? n - 9 : n;
    }
    return sum % 10 === 0;
  }
  function personalNumberOk(value) {
    var m = /^(\d{8})[-+]?(\d{4})$/.exec(value);
    if (!m) { return false; }
    var d = m[1] + m[2];
    var y = +d.slice(0, 4), mo = +d.slice(4, 6), day = +d.slice(6, 8);
    if (day > 60) { day -= 60; }
    var date = new Date(Date.UTC(y, mo - 1, day));
    if (date.getUTCFullYear() !== y || date.getUTCMonth() !== mo - 1 || date.getUTCDate() !== day) {
      return false;
    }
    return luhn(d.slice(2));
  }
  function emailOk(value) {
    var at = value.indexOf("@");
    var domain = value.slice(at + 1);
    return at > 0 && domain.indexOf(".") !== -1 && !/\s/.test(value) && value.length <= 320;
  }
  function rowFilled(row) {
    return Array.prototype.some.call(row.querySelectorAll("input"), function (i) {
      return i.value.trim() !== "";
    });
  }
  function pnrNeeded() {
    var wf = workflows[document.getElementById("workflow").value] || {};
    return wf.identity === "personal_number";
  }
  function noticeNeeded() {
    var wf = workflows[document.getElementById("workflow").value] || {};
    return !!wf.notice;
  }
  function checkField(input) {
    var v = input.value.trim();
    var name = input.name;
    var row = input.closest(".signer-row");
    if (name === "title") { return v ? "" : msg.title; }
    if (name === "body" || name === "meeting_date" || name === "kept_at") {
      return v || !noticeNeeded() ? "" : msg[name];
    }
    if (name === "deadline" && v) {
      var today = new Date(); today.setHours(0, 0, 0, 0);
      var chosen = new Date(v + "T00:00:00");
      return isNaN(chosen) || chosen < today ? msg.deadline : "";
    }
    if (!row) { return ""; }
    if (!rowFilled(row)) { return ""; }
    if (/-name$/.test(name)) { return v ? "" : msg.name; }
    if (/-email$/.test(name)) { return !v ? msg.email_missing : (emailOk(v) ? "" : msg.email); }
    if (/-personal_number$/.test(name)) {
      if (!v) { return pnrNeeded() ? msg.pnr_required : ""; }
      return personalNumberOk(v) ? "" : msg.pnr;
    }
    return "";
  }
  function checkAll() {
    var found = [];
    form.querySelectorAll("input[type=text], input[type=email], input[type=date]")
      .forEach(function (input) {
        var text = checkField(input);
        setError(input, text);
        if (text) { found.push([input, text]); }
      });
    var rows = rowsBox.querySelectorAll(".signer-row");
    if (!Array.prototype.some.call(rows, rowFilled)) {
      var first = rowsBox.querySelector("input");  // the first signer's name
      setError(first, msg.name);
      found.push([first, msg.no_signers]);
    }
    if (!fileInput.files.length) {
      setError(fileInput, msg.file_missing);
      found.unshift([fileInput, msg.file_missing]);
    } else if (fileOk === false) {
      found.unshift([fileInput, errorNode(fileInput).textContent]);
    }
    return found;
  }
  function showSummary(found, focus) {
    var list = summary.querySelector("ul");
    list.textContent = "";
    found.forEach(function (pair) {
      var li = document.createElement("li");
      var a = document.createElement("a");
      a.href = "#" + pair[0].id;
      a.textContent = pair[1];
      a.addEventListener("click", function (e) { e.preventDefault(); pair[0].focus(); });
      li.appendChild(a);
      list.appendChild(li);
    });
    summary.hidden = !found.length;
    if (found.length && focus) { summary.focus(); }
  }
  form.addEventListener("change", function (e) {
    var t = e.target;
    if (t.matches("input[type=text], input[type=email], input[type=date]")) {
      setError(t, checkField(t));
    }
    // a summary on show lists what is still wrong, not what was when it was made
    if (!summary.hidden) { showSummary(checkAll(), false); }
  });
  form.addEventListener("submit", function (e) {
    var found = checkAll();
    if (found.length) { e.preventDefault(); showSummary(found, true); return; }
    document.getElementById("start").disabled = true;
    document.getElementById("start").textContent = msg.starting;
  });

  /* ---- the file: drag and drop, page images ---- */
  function showThumbs(body) {
    thumbs.textContent = "";
    body.images.forEach(function (src, i) {
      var li = document.createElement("li");
      var fig = document.createElement("figure");
      var img = document.createElement("img");
      img.src = src;
      img.alt = msg.page.replace("{n}", i + 1);
      var cap = document.createElement("figcaption");
      cap.textContent = String(i + 1);
      cap.setAttribute("aria-hidden", "true");
      fig.appendChild(img); fig.appendChild(cap); li.appendChild(fig);
      thumbs.appendChild(li);
    });
    thumbs.hidden = !body.images.length;
    thumbsStatus.textContent = msg.pages.replace("{n}", body.pages);
  }
  function checkFile() {
    thumbs.hidden = true;
    thumbsStatus.textContent = "";
    fileOk = null;
    var file = fileInput.files[0];
    if (!file) { return; }
    if (maxBytes && file.size > maxBytes) {
      fileOk = false; setError(fileInput, msg.too_large); return;
    }
    setError(fileInput, "");
    thumbsStatus.textContent = msg.reading;
    var data = new FormData();
    data.append("document", file);
    fetch("/rounds/new/thumbnails", {method: "POST", body: data, credentials: "same-origin",
                                     headers: {"X-CSRFToken": csrf()}})
      .then(function (resp) { return resp.json().then(function (b) { return [resp.ok, b]; }); })
      .then(function (r) {
        if (r[0]) { fileOk = true; showThumbs(r[1]); }
        else { fileOk = false; thumbsStatus.textContent = ""; setError(fileInput, r[1].error); }
      })
      .catch(function () { thumbsStatus.textContent = msg.no_preview; });
  }
  fileInput.addEventListener("change", checkFile);
  drop.querySelector(".dropzone-text").hidden = false;
  ["dragenter", "dragover"].forEach(function (type) {
    drop.addEventListener(type, function (e) { e.preventDefault(); drop.classList.add("over"); });
  });
  ["dragleave", "drop"].forEach(function (type) {
    drop.addEventListener(type, function () { drop.classList.remove("over"); });
  });
  drop.addEventListener("drop", function (e) {
    e.preventDefault();
    if (e.dataTransfer && e.dataTransfer.files.length) {
      fileInput.files = e.dataTransfer.files;
      checkFile();
    }
  });

  /* ---- signer rows ---- */
  function renumber() {
    var rows = rowsBox.querySelectorAll(".signer-row");
    rows.forEach(function (row, k) {
      row.setAttribute("data-row", k);
      row.querySelectorAll("[id], [name], [for], [aria-describedby], [data-field]")
        .forEach(function (el) {
          ["id", "name", "for", "aria-describedby", "data-field"].forEach(function (attr) {
            var v = el.getAttribute(attr);
            if (v) { el.setAttribute(attr, v.replace(/signers-\d+-/g, "signers-" + k + "-")); }
          });
        });
      row.querySelectorAll("button[name=action]").forEach(function (b) {
        b.value = b.value.replace(/-\d+$/, "-" + k);
      });
      var legend = row.querySelector("legend");
      legend.textContent = legend.textContent.replace(/\d+/, k + 1);
      row.querySelectorAll(".row-actions .visually-hidden").forEach(function (s) {
        s.textContent = s.textContent.replace(/\d+/, k + 1);
      });
      row.querySelector(".row-up").disabled = k === 0;
      row.querySelector(".row-down").disabled = k === rows.length - 1;
      row.querySelector(".row-remove").disabled = rows.length === 1;
    });
  }
  function addRow() {
    var row = template.content.firstElementChild.cloneNode(true);
    rowsBox.appendChild(row);
    renumber();
    syncWorkflow();
    row.querySelector("input").focus();
  }
  rowsBox.addEventListener("click", function (e) {
    var b = e.target.closest("button[name=action]");
    if (!b) { return; }
    e.preventDefault();
    var row = b.closest(".signer-row");
    var verb = b.value.split("-")[0];
    if (verb === "remove") {
      var next = row.nextElementSibling || row.previousElementSibling;
      row.remove();
      renumber();
      if (next) { next.querySelector("input").focus(); }
      thumbsStatus.textContent = "";
      return;
    }
    if (verb === "up" && row.previousElementSibling) {
      rowsBox.insertBefore(row, row.previousElementSibling);
    } else if (verb === "down" && row.nextElementSibling) {
      rowsBox.insertBefore(row.nextElementSibling, row);
    }
    renumber();
    (b.disabled ? row.querySelector("input") : b).focus();
  });
  document.getElementById("add-signer").addEventListener("click", function (e) {
    e.preventDefault();
    if (rowsBox.querySelectorAll(".signer-row").length < 20) { addRow(); }
  });

  /* ---- the workflow decides the roles and whether a personal number is needed ---- */
  function syncWorkflow() {
    var wf = workflows[document.getElementById("workflow").value] || {};
    var needed = wf.identity === "personal_number";
    document.getElementById("pnr-policy").hidden = !needed;
    ["body", "meeting_date", "kept_at"].forEach(function (id) {  // the notice of justering needs them
      var input = document.getElementById(id);
      var req = form.querySelector("label[for='" + id + "'] .req");
      if (req) { req.hidden = !wf.notice; }
      if (wf.notice) { input.setAttribute("aria-required", "true"); }
      else { input.removeAttribute("aria-required"); setError(input, ""); }
    });
    rowsBox.querySelectorAll(".signer-row").forEach(function (row) {
      var pnr = row.querySelector("input[name$=-personal_number]");
      var req = row.querySelector("label[for='" + pnr.id + "'] .req");
      if (req) { req.hidden = !needed; }
      if (needed) { pnr.setAttribute("aria-required", "true"); }
      else { pnr.removeAttribute("aria-required"); }
      var select = row.querySelector("select.role-select");
      if (!wf.roles || !wf.roles.length) { return; }
      var current = select.value;
      select.textContent = "";
      var seen = false;
      wf.roles.forEach(function (pair) {
        var opt = new Option(pair[1], pair[0], false, pair[0] === current);
        seen = seen || pair[0] === current;
        select.appendChild(opt);
      });
      if (!seen && current) {
        select.appendChild(new Option(current, current, false, true));
      }
    });
  }
  document.getElementById("workflow").addEventListener("change", syncWorkflow);
  renumber();
})();
