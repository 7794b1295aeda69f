// 上门办 on a phone: arrive / photos / signature / complete, with an offline outbox.
// Every submission gets a client-generated id and waits in IndexedDB until the server has
// answered it; the server answers the same id the same way, so resending is always safe.
(function () {
  "use strict";
  // The outbox belongs to the user who filled it: one IndexedDB database per staff id, so a
  // colleague logging in on the same phone neither sends nor sees (nor drops) its items.
  var USER = (document.body && document.body.getAttribute("data-user")) || "";
  var DB_NAME = "servicepoint-visits-u" + USER, DB_VERSION = 1, dbPromise = null, syncing = false;

  function openDb() {
    if (!USER) return Promise.reject(new Error("no user"));
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

  // Send order: every arrival before any completion (a visit's completion is refused before
  // its arrival), then oldest first. Old-outbox items may all carry the time they were taken
  // over, so their order must not rest on the clock or on the client id alone.
  var KIND_ORDER = { arrive: 0, complete: 1 };

  function allOutbox() {
    return tx("outbox", "readonly", function (s) { return s.getAll(); }).then(function (items) {
      return (items || []).filter(function (i) { return String(i.user) === USER; })
        .sort(function (a, b) { return (KIND_ORDER[a.kind] - KIND_ORDER[b.kind]) || (a.created - b.created); });
    }, function () { return []; });
  }

  function putItem(item) { return tx("outbox", "readwrite", function (s) { s.put(item); }); }
  function dropItem(id) { return tx("outbox", "readwrite", function (s) { s.delete(id); }); }

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
    var el = document.getElementById("visit-msg") || document.getElementById("outbox-msg");
    if (!el) return;
    el.hidden = false; el.textContent = text; el.className = "msg " + (ok ? "ok" : "error");
  }

  var KIND_LABELS = { arrive: "到达", complete: "办结" };
  var STATE_TEXT = { assigned: "待上门", arrived: "已到达", done: "已办结" };

  // The header counts what waits (待同步) and what the server refused (需处理); refused
  // items stay listed with the server's reason until the user fixes and resends or gives up.
  function refreshCount() {
    return allOutbox().then(function (items) {
      var refused = items.filter(function (i) { return i.refused; });
      var box = document.getElementById("outbox"), label = document.getElementById("outbox-count");
      if (label) label.textContent = "待同步 " + (items.length - refused.length) + (refused.length ? " · 需处理 " + refused.length : "");
      if (box) box.classList.toggle("empty", items.length === 0);
      showProblems(refused);
      reflectOutbox(items);
      return items.length - refused.length;
    });
  }

  function showProblems(refused) {
    var list = document.getElementById("outbox-problems"), page = document.getElementById("phone-visit");
    if (!list) return;
    list.textContent = "";
    list.hidden = refused.length === 0;
    refused.forEach(function (item) {
      var li = document.createElement("li"), here = page && page.dataset.visit === item.visit;
      li.className = "outbox-problem"; li.setAttribute("data-client", item.client_id);
      var head = document.createElement("strong"); head.textContent = item.visit + " " + KIND_LABELS[item.kind] + "未被接受：";
      var why = document.createElement("span"); why.className = "reason"; why.textContent = item.refused.error;
      li.appendChild(head); li.appendChild(why);
      var fix;
      if (item.refused.code === "not_assigned") {  // 改派: no edit fixes it; keep or give up
        fix = document.createElement("span");
        fix.textContent = "照片和签名仍保留在本手机上";
      } else if (here) {
        fix = document.createElement("button"); fix.type = "button";
        fix.addEventListener("click", function () { fixItem(item); });
      } else {
        fix = document.createElement("a"); fix.href = item.url.replace(/\/submit$/, "");
      }
      if (item.refused.code !== "not_assigned") { fix.className = "fix"; fix.textContent = "修改后重发"; }
      var drop = document.createElement("button"); drop.type = "button"; drop.className = "drop"; drop.textContent = "放弃此提交";
      drop.addEventListener("click", function () {
        if (!window.confirm("放弃后这次" + KIND_LABELS[item.kind] + "不会再发送，照片和签名也不再保留。确定放弃吗？")) return;
        dropItem(item.client_id).then(refreshCount);
      });
      li.appendChild(fix); li.appendChild(drop); list.appendChild(li);
    });
  }

  function enqueue(item) {
    item.user = USER;
    item.created = item.created || Date.now();
    return putItem(item).then(refreshCount);
  }

  function send(item) {
    var fd = new FormData();
    Object.keys(item.fields).forEach(function (k) { fd.append(k, item.fields[k]); });
    fd.append("client_id", item.client_id);
    fd.append("kind", item.kind);
    (item.photos || []).forEach(function (b, i) { fd.append("photos", b, "photo-" + (i + 1) + ".jpg"); });
    if (item.signature) fd.append("signature", item.signature, "signature.png");
    return fetch(item.url, { method: "POST", body: fd, credentials: "same-origin", redirect: "manual",
                             headers: { "X-CSRF-Token": csrf(), "Accept": "application/json" } });
  }

  // Send queued submissions in order. An item leaves the outbox only on a definite answer
  // about it: accepted (or replayed), or refused — then it stays, marked with the reason,
  // until the user fixes and resends it or gives it up. No network, 401, a stale page (CSRF)
  // or a server error stop the round and keep everything.
  function sync() {
    if (syncing) return Promise.resolve();
    syncing = true;
    var blocked = {};
    return allOutbox().then(function (items) {
      var i = 0;
      function next() {
        while (i < items.length && (items[i].refused || blocked[items[i].url])) {
          blocked[items[i].url] = true; i += 1;  // later steps of a refused visit wait for the fix
        }
        if (i >= items.length) return;
        var item = items[i]; i += 1;
        return send(item).then(function (resp) {
          var json = (resp.headers.get("content-type") || "").indexOf("application/json") >= 0;
          if (resp.status === 401 || resp.type === "opaqueredirect") {
            msg("登录已过期，请重新登录后同步（数据仍保存在手机上）", false); throw new Error("stop");
          }
          if (!json && resp.status === 403) {
            msg("页面已过期，请刷新页面（或重新登录）后同步（数据仍保存在手机上）", false); throw new Error("stop");
          }
          if (resp.status >= 500 || !json) {
            msg("服务器暂时无法处理（HTTP " + resp.status + "），数据仍保存在手机上，请稍后再同步", false);
            throw new Error("stop");
          }
          return resp.json().then(function (body) {
            if (resp.ok) return dropItem(item.client_id).then(function () { done(item, body); return next(); });
            item.refused = { status: resp.status, error: body.error || ("提交未被接受（HTTP " + resp.status + "）"),
                             field: body.field || "", code: body.code || "" };
            blocked[item.url] = true;
            return putItem(item).then(function () {
              var then = item.refused.code === "not_assigned" ? "（已保留在手机上，可保留或放弃）" : "（已保留，请修改后重发）";
              msg(item.visit + " " + KIND_LABELS[item.kind] + "未被接受：" + item.refused.error + then, false);
              return next();
            });
          });
        });
      }
      return next();
    }).catch(function (err) {
      if (!err || err.message !== "stop") msg("网络不可用，已保存在手机上，联网后点「同步」", false);
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
    page.dataset.state = body.state;
    if (body.state === "arrived") msg("已登记到达", true);
    if (body.state === "done") {
      msg("已办结并同步，服务记录 " + body.record, true);
      tx("drafts", "readwrite", function (s) { s.delete(body.visit); });
    }
  }

  // The server refused an item: put what it carried back into the form — the phone's
  // original times included — and take it out of the outbox; the user fixes and resends.
  function fixItem(item) {
    var d = { visit: item.visit, fix_created: item.created };
    if (item.kind === "arrive") { d.arrive_time = item.fields.phone_time; }
    else {
      d.leave_time = item.fields.phone_time; d.photos = item.photos || []; d.signature = item.signature;
      d.outcome = item.fields.outcome; d.note = item.fields.outcome_note;
    }
    return tx("drafts", "readwrite", function (s) {
      var req = s.get(item.visit);
      req.onsuccess = function () { s.put(Object.assign({}, req.result || {}, d)); };
    }).then(function () { return dropItem(item.client_id); }).then(function () {
      return loadDraft(item.visit);
    }).then(function () {
      showStep(item.kind);
      var sel = document.getElementById(item.kind === "arrive" ? "arrive-no-gps" : "leave-no-gps");
      if (sel && /_(lat|lon|accuracy|no_gps)$/.test(item.refused.field || "")) sel.focus();
      msg(item.refused.error + "：请修改后重新点「" + (item.kind === "arrive" ? "到达并定位" : "离开并办结") + "」", false);
      return refreshCount();
    });
  }

  function showStep(kind) {
    var arrive = document.getElementById("arrive-step"), complete = document.getElementById("complete-step");
    if (arrive) arrive.hidden = kind !== "arrive";
    if (complete) complete.hidden = kind !== "complete";
  }

  // The server's position rule (outlet/services/evidence.py), checked when the position is
  // taken: a fix outside it is not sent; the agent picks a no-GPS reason there and then.
  function positionProblem(c) {
    var page = document.getElementById("phone-visit"), max = Number(page.dataset.maxAccuracy || 2000);
    var b = (page.dataset.bounds || "3.8,53.6,73.5,135.1").split(",").map(Number);
    if (!(c.latitude >= b[0] && c.latitude <= b[1] && c.longitude >= b[2] && c.longitude <= b[3]))
      return "定位不在中国境内";
    if (!(c.accuracy > 0 && c.accuracy <= max))
      return "定位精度 " + Math.round(c.accuracy) + " 米，超出 " + max + " 米";
    return "";
  }

  function locate(prefix, fields, reasonSelect) {
    var reason = reasonSelect ? reasonSelect.value : "";
    return new Promise(function (resolve) {
      if (reason) { fields[prefix + "_no_gps"] = reason; resolve(fields); return; }
      if (!navigator.geolocation) { fields.problem = "本设备无法定位"; resolve(fields); return; }
      navigator.geolocation.getCurrentPosition(function (pos) {
        var problem = positionProblem(pos.coords);
        if (problem) { fields.problem = problem; resolve(fields); return; }
        fields[prefix + "_lat"] = String(pos.coords.latitude);
        fields[prefix + "_lon"] = String(pos.coords.longitude);
        fields[prefix + "_accuracy"] = String(pos.coords.accuracy);
        resolve(fields);
      }, function () { fields.problem = "无法获取定位"; resolve(fields); },
      { enableHighAccuracy: true, timeout: 10000, maximumAge: 0 });  // this step's own position
    });
  }

  // --- photos: resized on the phone (longest side 1600 px, JPEG), at most data-max-photos -
  var photos = [];
  function maxPhotos() {
    var page = document.getElementById("phone-visit");
    return Number((page && page.dataset.maxPhotos) || 6);
  }
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
    var list = document.getElementById("photo-list"), count = document.getElementById("photo-count");
    if (count) count.textContent = photos.length + " / " + maxPhotos();
    var input = document.getElementById("photo-input");
    if (input) input.disabled = photos.length >= maxPhotos();
    if (!list) return;
    list.textContent = "";
    photos.forEach(function (b, i) {
      var fig = document.createElement("figure"), img = document.createElement("img"), del = document.createElement("button");
      img.src = URL.createObjectURL(b); img.alt = "材料照片 " + (i + 1);
      del.type = "button"; del.className = "photo-remove"; del.textContent = "删除";
      del.setAttribute("aria-label", "删除第 " + (i + 1) + " 张照片");
      del.addEventListener("click", function () {
        photos.splice(i, 1); showPhotos(); if (currentVisit) saveDraft(currentVisit);
      });
      fig.appendChild(img); fig.appendChild(del); list.appendChild(fig);
    });
  }

  // --- signature: pointer strokes on a canvas → PNG ------------------------------------
  var strokes = 0, signatureBlob = null, currentVisit = null, draftExtra = {};
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

  // A draft holds the form (photos, signature, outcome, note) and, after a refused item was
  // taken back for fixing, the phone's original times and outbox position of that item.
  function saveDraft(visit) {
    var outcome = document.getElementById("outcome"), note = document.getElementById("outcome-note");
    return tx("drafts", "readwrite", function (s) {
      s.put(Object.assign({}, draftExtra, { visit: visit, photos: photos, outcome: outcome ? outcome.value : "",
                                            note: note ? note.value : "", signature: signatureBlob }));
    });
  }

  function loadDraft(visit) {
    return tx("drafts", "readonly", function (s) { return s.get(visit); }).then(function (d) {
      if (!d) return;
      draftExtra = { arrive_time: d.arrive_time, leave_time: d.leave_time, fix_created: d.fix_created };
      photos = d.photos || []; showPhotos();
      if (d.outcome) document.getElementById("outcome").value = d.outcome;
      if (d.note) document.getElementById("outcome-note").value = d.note;
      var canvas = document.getElementById("signature-pad");
      if (d.signature && canvas && window.createImageBitmap) {
        return createImageBitmap(d.signature).then(function (bmp) {
          var ctx = canvas.getContext("2d");
          ctx.clearRect(0, 0, canvas.width, canvas.height); ctx.drawImage(bmp, 0, 0);
          signatureBlob = d.signature; strokes = Math.max(strokes, 1);
        });
      }
    });
  }

  // The page shows the state the server last sent; what waits in the outbox for this visit
  // is newer: show that (the header and the page always tell the same), never offer a step
  // twice, and show a refused step as refused.
  function reflectOutbox(items) {
    var page = document.getElementById("phone-visit");
    if (!page) return;
    var mine = items.filter(function (i) { return i.url === page.dataset.submit; });
    var waiting = mine.filter(function (i) { return !i.refused; }).map(function (i) { return i.kind; });
    var refused = mine.filter(function (i) { return i.refused; });
    var arrive = document.getElementById("arrive-step"), complete = document.getElementById("complete-step");
    var state = document.getElementById("visit-state"), server = page.dataset.state;
    if (!arrive && !complete) return;
    var text = STATE_TEXT[server] || server;
    if (refused.length) {
      text += "（" + KIND_LABELS[refused[0].kind] + "未被接受，见上方）";
      if (arrive) arrive.hidden = true; if (complete) complete.hidden = true;
    } else if (waiting.indexOf("complete") >= 0 && server === "assigned" && waiting.indexOf("arrive") < 0) {
      // the arrival was refused and taken back for fixing: it must be resent before the rest
      text = "待上门（办结待同步，请先重新登记到达）"; showStep("arrive");
    } else if (waiting.indexOf("complete") >= 0) {
      text = "已办结（待同步）"; if (arrive) arrive.hidden = true; if (complete) complete.hidden = true;
    } else if (waiting.indexOf("arrive") >= 0) {
      text = "已到达（待同步）"; if (arrive) arrive.hidden = true; if (complete) complete.hidden = false;
    } else if (server === "done") {
      if (arrive) arrive.hidden = true; if (complete) complete.hidden = true;
    } else {
      showStep(server === "assigned" ? "arrive" : "complete");
    }
    if (state) state.textContent = text;
  }

  function setupVisit(page) {
    var visit = page.dataset.visit, url = page.dataset.submit;
    var arriveBtn = document.getElementById("arrive-button"), completeBtn = document.getElementById("complete-button");
    if (!arriveBtn && !completeBtn) return;
    currentVisit = visit;
    loadDraft(visit);
    function queue(kind, fields, extra) {
      var item = Object.assign({ client_id: newId(), url: url, visit: visit, kind: kind, fields: fields,
                                 created: draftExtra.fix_created }, extra || {});
      draftExtra = {};
      return enqueue(item).then(function () { return saveDraft(visit); }).then(sync);
    }
    if (arriveBtn) arriveBtn.addEventListener("click", function () {
      arriveBtn.disabled = true;
      var when = draftExtra.arrive_time || new Date().toISOString();  // the phone's time of arrival
      locate("arrive", { phone_time: when }, document.getElementById("arrive-no-gps")).then(function (fields) {
        arriveBtn.disabled = false;
        if (fields.problem) {
          msg(fields.problem + "：请在「无定位原因」中选择原因后再点「到达并定位」", false);
          document.getElementById("arrive-no-gps").focus(); return;
        }
        return queue("arrive", fields);
      });
    });
    var input = document.getElementById("photo-input");
    if (input) input.addEventListener("change", function () {
      var files = Array.prototype.slice.call(input.files || []), room = maxPhotos() - photos.length;
      var skipped = Math.max(0, files.length - room);
      Promise.all(files.slice(0, Math.max(0, room)).map(function (f) { return resize(f).then(function (b) { return b; }, function () { return null; }); }))
        .then(function (blobs) {
          var bad = blobs.filter(function (b) { return !b; }).length;
          blobs.forEach(function (b) { if (b) photos.push(b); });
          showPhotos(); saveDraft(visit); input.value = "";
          var notes = [];
          if (bad) notes.push("有 " + bad + " 个文件不是图片，已忽略");
          if (skipped) notes.push("每次上门最多 " + maxPhotos() + " 张照片，多出的 " + skipped + " 张未添加");
          if (notes.length) msg(notes.join("；"), false);
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
      if (photos.length > maxPhotos()) { msg("每次上门最多 " + maxPhotos() + " 张照片，请删除多余的照片", false); return; }
      var outcome = document.getElementById("outcome").value, note = document.getElementById("outcome-note").value.trim();
      if ((outcome === "not_done" || outcome === "handed_over") && !note) { msg("请填写原因或转办去向", false); return; }
      completeBtn.disabled = true;
      var when = draftExtra.leave_time || new Date().toISOString();  // the phone's time of leaving
      canvas.toBlob(function (sig) {
        locate("leave", { phone_time: when, outcome: outcome, outcome_note: note },
               document.getElementById("leave-no-gps")).then(function (fields) {
          completeBtn.disabled = false;
          if (fields.problem) {
            msg(fields.problem + "：请在「无定位原因」中选择原因后再点「离开并办结」", false);
            document.getElementById("leave-no-gps").focus(); return;
          }
            return queue("complete", fields, { photos: photos.slice(), signature: sig });
        });
      }, "image/png");
    });
  }

  // Before the per-user outbox, the phone kept one shared outbox ("servicepoint-visits"): its
  // items cannot be attributed to anyone. They are shown as 旧版待同步记录 N and never sent
  // silently: the user logged in now either resubmits them as their own (they join this
  // user's outbox with their client ids, so a copy the server already holds is answered as
  // before, and anything refused stays listed with the reason) or gives them up. Either way
  // the old outbox is emptied, so they are offered once.
  var LEGACY_DB = "servicepoint-visits", LEGACY_URL = /^\/services\/visits\/[^\/]+\/submit$/;

  function openLegacy() {
    var known = indexedDB.databases ? indexedDB.databases().then(function (list) {
      return list.some(function (d) { return d.name === LEGACY_DB; });
    }, function () { return true; }) : Promise.resolve(true);
    return known.then(function (exists) {
      if (!exists) return null;
      return new Promise(function (resolve) {
        var req = indexedDB.open(LEGACY_DB);
        req.onupgradeneeded = function () { req.transaction.abort(); };  // absent: never create it
        req.onsuccess = function () {
          var db = req.result;
          if (db.objectStoreNames.contains("outbox")) { resolve(db); return; }
          db.close(); resolve(null);
        };
        req.onerror = function () { resolve(null); };
      });
    });
  }

  function legacyTx(db, mode, fn) {
    return new Promise(function (resolve, reject) {
      var t = db.transaction("outbox", mode), out = fn(t.objectStore("outbox"));
      t.oncomplete = function () { resolve(out && "result" in out ? out.result : undefined); };
      t.onerror = function () { reject(t.error); };
    });
  }

  function showLegacy() {
    var box = document.getElementById("legacy-outbox");
    if (!box || !USER || !window.indexedDB) return Promise.resolve();
    return openLegacy().then(function (db) {
      if (!db) return;
      return legacyTx(db, "readonly", function (st) { return st.getAll(); }).then(function (items) {
        items = (items || []).filter(function (i) { return i && LEGACY_URL.test(i.url || ""); });
        if (!items.length) { db.close(); return; }
        function finish(keep) {
          return legacyTx(db, "readwrite", function (st) { st.clear(); }).then(function () {
            db.close(); box.hidden = true; box.textContent = "";
            return keep ? refreshCount().then(sync) : refreshCount();
          });
        }
        box.textContent = "";
        var head = document.createElement("strong"); head.id = "legacy-count";
        head.textContent = "旧版待同步记录 " + items.length;
        var why = document.createElement("p");
        why.textContent = "这些记录由旧版页面保存在本手机上，无法确定是谁提交的。请确认是否由您本人重新提交。";
        var resend = document.createElement("button"); resend.type = "button"; resend.id = "legacy-resend";
        resend.textContent = "由当前登录人重新提交";
        resend.addEventListener("click", function () {
          resend.disabled = true;
          Promise.all(items.map(function (old) {
            return putItem({ client_id: old.client_id, url: old.url, visit: old.url.split("/")[3],
                             kind: old.kind, fields: old.fields || {}, photos: old.photos || [],
                             signature: old.signature || null, created: old.created || Date.now(), user: USER });
          })).then(function () { return finish(true); });
        });
        var drop = document.createElement("button"); drop.type = "button"; drop.id = "legacy-drop";
        drop.className = "drop"; drop.textContent = "放弃";
        drop.addEventListener("click", function () {
          if (!window.confirm("放弃后这 " + items.length + " 条旧版记录不会再发送，其中的照片和签名也不再保留。确定放弃吗？")) return;
          finish(false);
        });
        box.appendChild(head); box.appendChild(why); box.appendChild(resend); box.appendChild(drop);
        box.hidden = false;
      });
    }).catch(function () { /* no IndexedDB: nothing old to offer */ });
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
    showLegacy();
  });
})();
