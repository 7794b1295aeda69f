// 上门办 on a phone: arrive / photos / signature / complete, with an offline outbox.
// Every submission gets a client-generated id and waits in IndexedDB until the server has
// answered it; the server answers the same id the same way, so resending is always safe.
(function () {
  "use strict";
  var DB_NAME = "servicepoint-visits", DB_VERSION = 1, dbPromise = null, syncing = false;

  function openDb() {
    if (dbPromise) return dbPromise;
    dbPromise = new Promise(function (resolve, reject) {
      var req = indexedDB.open(DB_NAME, DB_VERSION);
      req.onupgradeneeded = function () {
        var db = req.result;
        if (!db.objectStoreNames.contains("outbox")) db.createObjectStore("outbox", { keyPath: "client_id" });
        if (!db.objectStoreNames.contains("drafts")) db.createObjectStore("drafts", { keyPath: "visit" });
      };
      req.onsuccess = function () { resolve(req.result); };
      req.onerror = function () { reject(req.error); };
    });
    return dbPromise;
  }

  function tx(store, mode, fn) {
    return openDb().then(function (db) {
      return new Promise(function (resolve, reject) {
        var t = db.transaction(store, mode), s = t.objectStore(store), out = fn(s);
        t.oncomplete = function () { resolve(out && "result" in out ? out.result : undefined); };
        t.onerror = function () { reject(t.error); };
      });
    });
  }

  function allOutbox() {
    return tx("outbox", "readonly", function (s) { return s.getAll(); }).then(function (items) {
      return (items || []).sort(function (a, b) { return a.created - b.created; });
    });
  }

  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var a = new Uint8Array(16); crypto.getRandomValues(a);
    return Array.prototype.map.call(a, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function csrf() {
    try { return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRF-Token"] || ""; }
    catch (e) { return ""; }
  }

  function msg(text, ok) {
    var el = document.getElementById("visit-msg");
    if (!el) return;
    el.hidden = false; el.textContent = text; el.className = "msg " + (ok ? "ok" : "error");
  }

  function refreshCount() {
    return allOutbox().then(function (items) {
      var box = document.getElementById("outbox"), label = document.getElementById("outbox-count");
      if (label) label.textContent = "待同步 " + items.length;
      if (box) box.classList.toggle("empty", items.length === 0);
      return items.length;
    });
  }

  function enqueue(item) {
    item.created = Date.now();
    return tx("outbox", "readwrite", function (s) { s.put(item); }).then(refreshCount);
  }

  function send(item) {
    var fd = new FormData();
    Object.keys(item.fields).forEach(function (k) { fd.append(k, item.fields[k]); });
    fd.append("client_id", item.client_id);
    fd.append("kind", item.kind);
    (item.photos || []).forEach(function (b, i) { fd.append("photos", b, "photo-" + (i + 1) + ".jpg"); });
    if (item.signature) fd.append("signature", item.signature, "signature.png");
    return fetch(item.url, { method: "POST", body: fd, credentials: "same-origin",
                             headers: { "X-CSRF-Token": csrf() } });
  }

  // Send queued submissions in order; stop at the first network failure (still offline).
  function sync() {
    if (syncing) return Promise.resolve();
    syncing = true;
    return allOutbox().then(function loop(items) {
      if (!items.length) return;
      var item = items[0];
      return send(item).then(function (resp) {
        var type = resp.headers.get("content-type") || "";
        if (type.indexOf("application/json") < 0) { msg("登录已过期，请重新登录后同步（数据仍保存在手机上）"); throw new Error("auth"); }
        return resp.json().then(function (body) {
          return tx("outbox", "readwrite", function (s) { s.delete(item.client_id); }).then(function () {
            if (resp.ok) { done(item, body); } else { msg(body.error || "提交失败", false); restore(item); }
            return allOutbox().then(loop);
          });
        });
      });
    }).catch(function (err) {
      if (err && err.message !== "auth") msg("网络不可用，已保存在手机上，联网后点「同步」", false);
    }).then(function () { syncing = false; return refreshCount(); });
  }

  // Ask the service worker to keep fresh copies (e.g. the visit page after a synced step,
  // so a reload offline does not show a step that is already done).
  function warm(urls) {
    if (!("serviceWorker" in navigator) || !navigator.serviceWorker.controller) return;
    navigator.serviceWorker.controller.postMessage({ type: "warm", urls: urls });
  }

  function done(item, body) {
    warm([item.url.replace(/\/submit$/, ""), "/services/visits/today"]);
    var page = document.getElementById("phone-visit");
    if (!page || page.dataset.visit !== body.visit) return;
    var state = document.getElementById("visit-state");
    if (body.state === "arrived") { if (state) state.textContent = "已到达"; msg("已登记到达", true); }
    if (body.state === "done") {
      if (state) state.textContent = "已办结";
      msg("已办结并同步，服务记录 " + body.record, true);
      var step = document.getElementById("complete-step"); if (step) step.hidden = true;
      tx("drafts", "readwrite", function (s) { s.delete(body.visit); });
    }
  }

  function restore(item) {
    var arrive = document.getElementById("arrive-step"), complete = document.getElementById("complete-step");
    if (item.kind === "arrive" && arrive) { arrive.hidden = false; if (complete) complete.hidden = true; }
    if (item.kind === "complete" && complete) complete.hidden = false;
  }

  function locate(prefix, fields, reasonSelect) {
    var reason = reasonSelect ? reasonSelect.value : "";
    return new Promise(function (resolve) {
      if (reason || !navigator.geolocation) { fields[prefix + "_no_gps"] = reason; resolve(fields); return; }
      navigator.geolocation.getCurrentPosition(function (pos) {
        fields[prefix + "_lat"] = String(pos.coords.latitude);
        fields[prefix + "_lon"] = String(pos.coords.longitude);
        fields[prefix + "_accuracy"] = String(pos.coords.accuracy);
        resolve(fields);
      }, function () { fields[prefix + "_no_gps"] = ""; resolve(fields); },
      { enableHighAccuracy: true, timeout: 10000, maximumAge: 60000 });
    });
  }

  // --- photos: resized on the phone (longest side 1600 px, JPEG) -------------------------
  var photos = [];
  function resize(file) {
    return createImageBitmap(file).then(function (bmp) {
      var scale = Math.min(1, 1600 / Math.max(bmp.width, bmp.height));
      var c = document.createElement("canvas");
      c.width = Math.round(bmp.width * scale); c.height = Math.round(bmp.height * scale);
      c.getContext("2d").drawImage(bmp, 0, 0, c.width, c.height);
      return new Promise(function (resolve) { c.toBlob(resolve, "image/jpeg", 0.85); });
    });
  }
  function showPhotos() {
    var list = document.getElementById("photo-list");
    if (!list) return;
    list.textContent = "";
    photos.forEach(function (b) { var img = document.createElement("img"); img.src = URL.createObjectURL(b); img.alt = "材料照片"; list.appendChild(img); });
  }

  // --- signature: pointer strokes on a canvas → PNG ------------------------------------
  var strokes = 0, signatureBlob = null, currentVisit = null;
  function signaturePad(canvas) {
    var ctx = canvas.getContext("2d"), drawing = false;
    ctx.lineWidth = 4; ctx.lineCap = "round"; ctx.strokeStyle = "#000";
    function at(e) { var r = canvas.getBoundingClientRect(); return [(e.clientX - r.left) * canvas.width / r.width, (e.clientY - r.top) * canvas.height / r.height]; }
    canvas.addEventListener("pointerdown", function (e) { drawing = true; var p = at(e); ctx.beginPath(); ctx.moveTo(p[0], p[1]); canvas.setPointerCapture(e.pointerId); });
    canvas.addEventListener("pointermove", function (e) { if (!drawing) return; var p = at(e); ctx.lineTo(p[0], p[1]); ctx.stroke(); strokes += 1; });
    ["pointerup", "pointercancel", "pointerleave"].forEach(function (t) {
      canvas.addEventListener(t, function () {
        var was = drawing; drawing = false;
        // the signature joins the draft, so a reload (offline, from the phone's copy) keeps it
        if (was && strokes) canvas.toBlob(function (b) { signatureBlob = b; if (currentVisit) saveDraft(currentVisit); }, "image/png");
      });
    });
    document.getElementById("signature-clear").addEventListener("click", function () {
      ctx.clearRect(0, 0, canvas.width, canvas.height); strokes = 0; signatureBlob = null;
      if (currentVisit) saveDraft(currentVisit);
    });
  }

  function saveDraft(visit) {
    var outcome = document.getElementById("outcome"), note = document.getElementById("outcome-note");
    return tx("drafts", "readwrite", function (s) {
      s.put({ visit: visit, photos: photos, outcome: outcome ? outcome.value : "", note: note ? note.value : "",
              signature: signatureBlob });
    });
  }

  function loadDraft(visit) {
    return tx("drafts", "readonly", function (s) { return s.get(visit); }).then(function (d) {
      if (!d) return;
      photos = d.photos || []; showPhotos();
      if (d.outcome) document.getElementById("outcome").value = d.outcome;
      if (d.note) document.getElementById("outcome-note").value = d.note;
      var canvas = document.getElementById("signature-pad");
      if (d.signature && canvas && window.createImageBitmap) {
        createImageBitmap(d.signature).then(function (bmp) {
          canvas.getContext("2d").drawImage(bmp, 0, 0); signatureBlob = d.signature; strokes = Math.max(strokes, 1);
        });
      }
    });
  }

  // A page opened from the phone's copy (offline) shows the state the server last sent;
  // what waits in the outbox for this visit is newer: show that, never offer a step twice.
  function reflectOutbox(url) {
    return allOutbox().then(function (items) {
      var kinds = items.filter(function (i) { return i.url === url; }).map(function (i) { return i.kind; });
      var arrive = document.getElementById("arrive-step"), complete = document.getElementById("complete-step");
      var state = document.getElementById("visit-state");
      if (kinds.indexOf("complete") >= 0) {
        if (arrive) arrive.hidden = true; if (complete) complete.hidden = true;
        if (state) state.textContent = "已办结（待同步）";
      } else if (kinds.indexOf("arrive") >= 0) {
        if (arrive) arrive.hidden = true; if (complete) complete.hidden = false;
        if (state) state.textContent = "已到达（待同步）";
      }
    });
  }

  function setupVisit(page) {
    var visit = page.dataset.visit, url = page.dataset.submit;
    var arriveBtn = document.getElementById("arrive-button"), completeBtn = document.getElementById("complete-button");
    if (!arriveBtn && !completeBtn) return;
    currentVisit = visit;
    loadDraft(visit);
    reflectOutbox(url);
    if (arriveBtn) arriveBtn.addEventListener("click", function () {
      arriveBtn.disabled = true;
      locate("arrive", { phone_time: new Date().toISOString() }, document.getElementById("arrive-no-gps")).then(function (fields) {
        arriveBtn.disabled = false;
        if (!fields.arrive_lat && !fields.arrive_no_gps) { msg("无法获取定位，请选择无定位原因后重试", false); return; }
        document.getElementById("arrive-step").hidden = true;
        document.getElementById("complete-step").hidden = false;
        document.getElementById("visit-state").textContent = "已到达（待同步）";
        return enqueue({ client_id: newId(), url: url, kind: "arrive", fields: fields }).then(sync);
      });
    });
    var input = document.getElementById("photo-input");
    if (input) input.addEventListener("change", function () {
      var files = Array.prototype.slice.call(input.files || []);
      Promise.all(files.map(function (f) { return resize(f).then(function (b) { return b; }, function () { return null; }); }))
        .then(function (blobs) {
          var bad = blobs.filter(function (b) { return !b; }).length;
          blobs.forEach(function (b) { if (b) photos.push(b); });
          showPhotos(); saveDraft(visit); input.value = "";
          if (bad) msg("有 " + bad + " 个文件不是图片，已忽略", false);
        });
    });
    var canvas = document.getElementById("signature-pad");
    if (canvas) signaturePad(canvas);
    ["outcome", "outcome-note"].forEach(function (id) {
      var el = document.getElementById(id);
      if (el) ["change", "input"].forEach(function (t) { el.addEventListener(t, function () { saveDraft(visit); }); });
    });
    if (completeBtn) completeBtn.addEventListener("click", function () {
      if (!strokes) { msg("签名为空，请申请人在屏幕上签名", false); return; }
      var outcome = document.getElementById("outcome").value, note = document.getElementById("outcome-note").value.trim();
      if ((outcome === "not_done" || outcome === "handed_over") && !note) { msg("请填写原因或转办去向", false); return; }
      completeBtn.disabled = true;
      canvas.toBlob(function (sig) {
        locate("leave", { phone_time: new Date().toISOString(), outcome: outcome, outcome_note: note },
               document.getElementById("leave-no-gps")).then(function (fields) {
          completeBtn.disabled = false;
          if (!fields.leave_lat && !fields.leave_no_gps) { msg("无法获取定位，请选择无定位原因后重试", false); return; }
          document.getElementById("complete-step").hidden = true;
          document.getElementById("visit-state").textContent = "已办结（待同步）";
          return enqueue({ client_id: newId(), url: url, kind: "complete", fields: fields, photos: photos.slice(), signature: sig })
            .then(function () { return saveDraft(visit); }).then(sync);
        });
      }, "image/png");
    });
  }

  // Offline pages: the service worker (visit-sw.js, scope /services/visits/) keeps this page,
  // today's visit pages and their static files on the phone.
  function offlineReady() {
    if (!("serviceWorker" in navigator)) return;
    navigator.serviceWorker.addEventListener("message", function (ev) {
      if (ev.data && ev.data.type === "warmed") document.body.setAttribute("data-offline-ready", String(ev.data.count));
    });
    navigator.serviceWorker.register("/services/visits/sw.js", { scope: "/services/visits/" })
      .then(function () { return navigator.serviceWorker.ready; })
      .then(function (reg) {
        var urls = [location.pathname];
        document.querySelectorAll("link[rel=stylesheet][href]").forEach(function (el) { urls.push(el.getAttribute("href")); });
        document.querySelectorAll("script[src]").forEach(function (el) { urls.push(el.getAttribute("src")); });
        document.querySelectorAll("a.visit-card[href]").forEach(function (a) { urls.push(a.getAttribute("href")); });
        (navigator.serviceWorker.controller || reg.active).postMessage({ type: "warm", urls: urls });
      })
      .catch(function () { /* no worker (plain HTTP on a phone): the outbox still works */ });
  }

  document.addEventListener("DOMContentLoaded", function () {
    offlineReady();
    var btn = document.getElementById("sync-button");
    if (btn) btn.addEventListener("click", function () { sync(); });
    window.addEventListener("online", function () { sync(); });
    var page = document.getElementById("phone-visit");
    if (page) setupVisit(page);
    refreshCount().then(function (n) { if (n && navigator.onLine) sync(); });
  });
})();
