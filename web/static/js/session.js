/* Session expiry warning and form drafts (no inline script: strict CSP).
 *
 * 1. Warning: <body data-session-idle> is the idle timeout and data-session-left the seconds
 *    to the absolute end of the login. The server moves its idle clock at most once a minute,
 *    so the warning shows 3 minutes before the idle end as this page sees it; "继续工作"
 *    posts /session/ping, which counts as activity.
 * 2. Drafts: what the user types into a form is kept in sessionStorage (this tab only, keyed
 *    by user and page; never passwords, files, phone or ID numbers — see personal()). When a session has ended, the next submit
 *    leads to the login page and back (?next=); arriving from the login page, the drafts of
 *    that page are put back into its forms. A successful htmx submit drops its draft, logout
 *    drops all.
 */
(function () {
  "use strict";
  var body = document.body;
  var user = body.getAttribute("data-user");
  if (!user) { return; }
  var PREFIX = "sp-draft:" + user + ":" + location.pathname + ":";
  var idle = parseInt(body.getAttribute("data-session-idle") || "0", 10);
  var left = parseInt(body.getAttribute("data-session-left") || "0", 10);
  var loadedAt = Date.now();
  var lastActivity = Date.now();
  var box = document.getElementById("session-warning");
  var text = box ? box.querySelector(".session-warning-text") : null;
  var keep = document.getElementById("session-keep");

  function csrf() {
    try { return JSON.parse(body.getAttribute("hx-headers") || "{}")["X-CSRF-Token"] || ""; }
    catch (e) { return ""; }
  }

  function show(message, canKeep) {
    if (!box || !text) { return; }
    text.textContent = message;
    if (keep) { keep.hidden = !canKeep; }
    box.classList.remove("hide");
  }

  function tick() {
    var now = Date.now();
    var idleLeft = idle - 60 - (now - lastActivity) / 1000;  // server clock may lag 60 s
    var absLeft = left - (now - loadedAt) / 1000;
    if (absLeft <= 0 || idleLeft <= 0) {
      show("登录已结束。再次提交时请重新登录，已填写的内容会保留。", false);
    } else if (absLeft < 300) {
      show("本次登录将在 " + Math.ceil(absLeft / 60) + " 分钟后到期（最长登录时长），请尽快提交正在填写的内容。", false);
    } else if (idleLeft < 120) {
      show("您已较长时间未操作，登录将在约 " + Math.ceil(idleLeft / 60) + " 分钟后结束。", true);
    } else if (box) {
      box.classList.add("hide");
    }
  }

  if (keep) {
    keep.addEventListener("click", function () {
      fetch("/session/ping", { method: "POST", headers: { "X-CSRF-Token": csrf() }, credentials: "same-origin" })
        .then(function (r) {
          if (r.status === 204) { lastActivity = Date.now(); tick(); }
          else { show("登录已结束。再次提交时请重新登录，已填写的内容会保留。", false); }
        });
    });
  }
  document.addEventListener("htmx:afterRequest", function () { lastActivity = Date.now(); });
  setInterval(tick, 15000);

  // --- drafts ---------------------------------------------------------------------------
  function formKey(form, i) {
    return form.id || form.getAttribute("hx-post") || form.getAttribute("action") || String(i);
  }
  // Personal data never goes into a draft, by one rule: a search form (any form with an
  // input type=search: people look up a case by an ID number or a name) is never drafted;
  // in other forms a phone or ID number field (input type tel, a name ending in phone /
  // mobile / id_number / id_no / idcard, or data-pii) is skipped, and so is any value that
  // holds a run of 7 or more digits (an ID or phone number, even half typed, in a note or
  // contact field). Those are typed again after a re-login.
  var PII_NAME = /(^|_)(phone|mobile|tel|id_number|id_no|idcard)$/i;
  var PII_VALUE = /\d{7,}/;
  function personal(el) {
    return (el.type || "").toLowerCase() === "tel" || PII_NAME.test(el.name) || el.hasAttribute("data-pii") ||
      PII_VALUE.test(el.value || "");
  }
  function fields(form) {
    return Array.prototype.filter.call(form.elements, function (el) {
      var type = (el.type || "").toLowerCase();
      return el.name && el.name !== "csrf_token" && !personal(el) &&
        ["password", "file", "hidden", "submit", "button", "reset"].indexOf(type) < 0;
    });
  }
  function forms() {
    return Array.prototype.filter.call(document.forms, function (f) {
      var isPost = (f.getAttribute("method") || "").toLowerCase() === "post" || f.hasAttribute("hx-post");
      return !f.hasAttribute("data-no-draft") && isPost && !f.querySelector("input[type=search]") &&
        f.getAttribute("action") !== "/logout";
    });
  }
  function save(form, i) {
    var values = fields(form).map(function (el) {
      return [el.name, el.value, el.type === "checkbox" || el.type === "radio" ? el.checked : null];
    });
    try { sessionStorage.setItem(PREFIX + formKey(form, i), JSON.stringify(values)); } catch (e) { /* full */ }
  }
  function restore(form, i) {
    var raw = sessionStorage.getItem(PREFIX + formKey(form, i));
    if (!raw) { return false; }
    var values = JSON.parse(raw), restored = false;
    fields(form).forEach(function (el) {
      values.forEach(function (v) {
        if (v[0] !== el.name) { return; }
        if (v[2] !== null) {
          if (el.value === v[1] && el.checked !== v[2]) { el.checked = v[2]; restored = true; }
        } else if (el.value !== v[1] && v[1] !== "") { el.value = v[1]; restored = true; }
      });
    });
    return restored;
  }
  function clearPage() {
    Object.keys(sessionStorage).forEach(function (k) {
      if (k.indexOf(PREFIX) === 0) { sessionStorage.removeItem(k); }
    });
  }

  var fromLogin = false;
  try { fromLogin = document.referrer && new URL(document.referrer).pathname === "/login"; } catch (e) { /* none */ }
  var list = forms();
  if (fromLogin) {
    list.forEach(function (form, i) {
      if (restore(form, i)) {
        var note = document.createElement("p");
        note.className = "notice draft-restored";
        note.textContent = "已恢复您登录前填写但未提交的内容，请核对后再提交。";
        form.insertBefore(note, form.firstChild);
      }
    });
  } else {
    clearPage();  // a fresh visit: drafts of this page are stale
  }
  list.forEach(function (form, i) {
    form.addEventListener("input", function () { save(form, i); });
    form.addEventListener("change", function () { save(form, i); });
  });
  document.addEventListener("htmx:afterRequest", function (evt) {
    var form = evt.detail.elt && evt.detail.elt.closest ? evt.detail.elt.closest("form") : null;
    var xhr = evt.detail.xhr;
    if (!form || !evt.detail.successful || (xhr && xhr.getResponseHeader("HX-Redirect"))) { return; }
    var i = list.indexOf(form);
    if (i >= 0) { sessionStorage.removeItem(PREFIX + formKey(form, i)); }
  });
  document.querySelectorAll("form[action='/logout']").forEach(function (f) {
    f.addEventListener("submit", function (e) {
      Object.keys(sessionStorage).forEach(function (k) {
        if (k.indexOf("sp-draft:") === 0) { sessionStorage.removeItem(k); }
      });
      // the 上门办 pages a phone kept for offline use (visit-sw.js) leave with the login
      if (window.caches && !f.dataset.cleared) {
        e.preventDefault();
        var clear = caches.keys().then(function (names) {
          return Promise.all(names.filter(function (n) { return n.indexOf("sp-visits-") === 0; })
            .map(function (n) { return caches.delete(n); }));
        });
        var wait = new Promise(function (resolve) { setTimeout(resolve, 1500); });
        Promise.race([clear, wait]).then(function () { f.dataset.cleared = "1"; f.submit(); },
                                         function () { f.dataset.cleared = "1"; f.submit(); });
      }
    });
  });
})();
