/* The call page: a peer-to-peer WebRTC call between the teller and the expert, signaled
 * over /assist/sessions/<id>/ws, plus (for recorded sessions, on the teller's side) a second
 * peer connection to the server's recorder. The expert always makes the offers and the
 * teller answers, so offers never collide; an answer that arrives for an offer already
 * superseded is dropped (perfect-negotiation style), never shown as an error.
 * Network loss: every trigger (disconnected for 3 s, failed, online, network change, the
 * teller's request) goes through one ICE-restart episode at a time; an episode that has
 * not reconnected after RESTART_RETRY_MS restarts again. CSP-clean: no inline code. */
(function () {
  "use strict";

  var root = document.getElementById("assist-call");
  if (!root) return;
  if (window.htmx) {
    window.htmx.config.responseHandling = [
      { code: "204", swap: false },
      { code: "[23]..", swap: true },
      { code: "[45]..", swap: true, error: true },
      { code: "...", swap: false }
    ];
  }
  if (root.getAttribute("data-state") !== "active") return;

  var sid = root.getAttribute("data-session");
  var role = root.getAttribute("data-role");
  var base = "/assist/sessions/" + sid;
  var $ = function (id) { return document.getElementById(id); };
  var ui = {
    remote: $("remote-video"), local: $("local-video"), status: $("call-status"),
    quality: $("quality"), rec: $("rec-indicator"), mute: $("btn-mute"), camera: $("camera-select"),
    screen: $("btn-screen"), unmute: $("btn-unmute-remote"), hangup: $("hangup-form"),
    chatLog: $("chat-log"), chatForm: $("chat-form"), chatInput: $("chat-input")
  };

  var ws = null, pc = null, recorderPc = null, recorderBusy = false, audioCtx = null, mixDest = null;
  var iceConfig = { iceServers: [] }, localStream = new MediaStream(), cameraTrack = null, screenTrack = null;
  var ended = false, backoff = 1000, chain = Promise.resolve(), pending = [], statsPosted = false;
  var started = Date.now(), prev = null, downTimer = 0, restartAt = 0, restartTimer = 0;
  var DOWN_MS = 3000, RESTART_RETRY_MS = 4000;
  var sum = { samples: 0, rtt: 0, rttMax: 0, kbps: 0, kbpsMin: 0, lost: 0, recv: 0, good: 0, warning: 0, bad: 0,
              decoded: 0, dropped: 0, restarts: 0 };

  function csrf() {
    try { return JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRF-Token"]; } catch (e) { return ""; }
  }
  function setStatus(text) { if (ui.status) ui.status.textContent = text; }
  function send(msg) { if (ws && ws.readyState === 1) ws.send(JSON.stringify(msg)); }
  // Panel refreshes go through a hidden element outside the panel (a refresh pushed while
  // another is in flight is queued, not lost with a replaced element), and the newest
  // render wins: an answer rendered before the one on screen is never swapped in.
  function refreshPanel() {
    var refresher = $("panel-refresher");
    if (refresher && window.htmx) window.htmx.trigger(refresher, "assist-refresh");
  }
  document.body.addEventListener("htmx:beforeSwap", function (e) {
    var current = $("assist-panel");
    if (!current || !e.detail.target || e.detail.target.id !== "assist-panel") return;
    var incoming = /data-version="(\d+)"/.exec(e.detail.serverResponse || "");
    if (incoming && Number(incoming[1]) < Number(current.getAttribute("data-version") || 0)) e.detail.shouldSwap = false;
  });
  function setRecording(state) {
    if (ui.rec) ui.rec.classList.toggle("hide", state !== "on");
    // "lost": the recorder process stopped; the call goes on, the record was kept up to the cut
    if (state === "lost") setStatus("录像服务中断：中断前的录像已保存，通话继续");
    if (state === "off" || state === "lost") refreshPanel();
  }
  function currentVideo() { return screenTrack || cameraTrack; }

  // --- media ---------------------------------------------------------------------------
  async function openMedia() {
    try {
      localStream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: true });
    } catch (e) {
      setStatus("无法打开摄像头或麦克风（" + e.name + "），仅接收对方画面");
      localStream = new MediaStream();
    }
    cameraTrack = localStream.getVideoTracks()[0] || null;
    ui.local.srcObject = localStream;
    listCameras();
  }

  async function listCameras() {
    if (!navigator.mediaDevices.enumerateDevices) return;
    var devices = await navigator.mediaDevices.enumerateDevices();
    var current = cameraTrack && cameraTrack.getSettings().deviceId;
    ui.camera.textContent = "";
    devices.filter(function (d) { return d.kind === "videoinput"; }).forEach(function (d, i) {
      var opt = document.createElement("option");
      opt.value = d.deviceId;
      opt.textContent = d.label || ("摄像头 " + (i + 1));
      opt.selected = d.deviceId === current;
      ui.camera.appendChild(opt);
    });
  }

  function replaceVideo(track) {
    [pc, recorderPc].forEach(function (p) {
      if (!p) return;
      p.getSenders().forEach(function (s) { if (s.track && s.track.kind === "video") s.replaceTrack(track); });
    });
    ui.local.srcObject = new MediaStream([track].concat(localStream.getAudioTracks()));
  }

  async function switchCamera() {
    var id = ui.camera.value;
    if (!id) return;
    try {
      var s = await navigator.mediaDevices.getUserMedia({ video: { deviceId: { exact: id }, width: 640, height: 480 } });
      var track = s.getVideoTracks()[0];
      if (cameraTrack) { localStream.removeTrack(cameraTrack); cameraTrack.stop(); }
      cameraTrack = track;
      localStream.addTrack(track);
      if (!screenTrack) replaceVideo(track);
      send({ type: "camera", label: track.label });
    } catch (e) { setStatus("切换摄像头失败：" + e.name); }
  }

  async function toggleScreen() {
    if (screenTrack) { stopScreen(); return; }
    try {
      var s = await navigator.mediaDevices.getDisplayMedia({ video: true });
      screenTrack = s.getVideoTracks()[0];
      screenTrack.addEventListener("ended", stopScreen);
      replaceVideo(screenTrack);
      ui.screen.textContent = "停止共享";
      send({ type: "screen", on: true });
    } catch (e) { setStatus("未能共享屏幕：" + e.name); }
  }
  function stopScreen() {
    if (!screenTrack) return;
    screenTrack.stop();
    screenTrack = null;
    if (cameraTrack) replaceVideo(cameraTrack);
    ui.screen.textContent = "共享屏幕";
    send({ type: "screen", on: false });
  }

  function toggleMute() {
    var tracks = localStream.getAudioTracks();
    var muted = tracks.length && tracks[0].enabled;
    tracks.forEach(function (t) { t.enabled = !muted; });
    ui.mute.textContent = muted ? "取消静音" : "静音";
    send({ type: "mute", muted: !!muted });
  }

  function playRemote() {
    var p = ui.remote.play();
    if (p && p.catch) p.catch(function () {
      ui.remote.muted = true;
      ui.remote.play();
      ui.unmute.classList.remove("hide");
    });
  }

  // --- the peer-to-peer call ------------------------------------------------------------
  function closePc() {
    if (pc) { pc.ontrack = pc.onicecandidate = pc.onconnectionstatechange = null; pc.close(); }
    pc = null;
    pending = [];
    recovered();
  }

  function createPc() {
    var p = new RTCPeerConnection(iceConfig);
    p.onicecandidate = function (e) { if (e.candidate) send({ type: "ice", candidate: e.candidate.toJSON() }); };
    p.ontrack = function (e) {
      var stream = e.streams[0] || new MediaStream([e.track]);
      if (ui.remote.srcObject !== stream) { ui.remote.srcObject = stream; playRemote(); }
      if (e.track.kind === "audio") mixRemote(stream);
    };
    p.onconnectionstatechange = function () {
      if (p !== pc) return;
      var s = p.connectionState;
      if (s === "connected") { setStatus("通话已连接"); recovered(); }
      else if (s === "disconnected") {
        setStatus("网络不稳定，正在恢复…");
        if (!downTimer) downTimer = setTimeout(function () { downTimer = 0; if (isDown()) restartIce(); }, DOWN_MS);
      }
      else if (s === "failed") { setStatus("连接中断，正在重新连接…"); restartIce(); }
    };
    return p;
  }

  function addLocalTracks(p) {
    var audio = localStream.getAudioTracks()[0], video = currentVideo();
    if (audio) p.addTrack(audio, localStream); else p.addTransceiver("audio", { direction: "recvonly" });
    if (video) p.addTrack(video, localStream); else p.addTransceiver("video", { direction: "recvonly" });
  }

  async function newCall() { // expert: (re)start the call with a fresh connection
    closePc();
    pc = createPc();
    addLocalTracks(pc);
    await pc.setLocalDescription(await pc.createOffer());
    send({ type: "offer", sdp: pc.localDescription.sdp });
  }

  async function onOffer(msg) { // teller
    if (role !== "teller") return;
    if (!(msg.restart && pc)) { closePc(); pc = createPc(); } else await freshIce();
    await pc.setRemoteDescription({ type: "offer", sdp: msg.sdp });
    if (!msg.restart) {
      var audio = localStream.getAudioTracks()[0], video = currentVideo();
      pc.getTransceivers().forEach(function (t) {
        var kind = t.receiver.track.kind;
        var track = kind === "audio" ? audio : video;
        if (track) { t.sender.replaceTrack(track); t.direction = "sendrecv"; t.sender.setStreams(localStream); }
      });
    }
    await pc.setLocalDescription(await pc.createAnswer());
    send({ type: "answer", sdp: pc.localDescription.sdp });
    await flushCandidates();
  }

  async function flushCandidates() {
    var list = pending; pending = [];
    for (var i = 0; i < list.length; i++) { try { await pc.addIceCandidate(list[i]); } catch (e) { /* stale */ } }
  }

  function isDown() { return !!pc && ["disconnected", "failed"].indexOf(pc.connectionState) >= 0; }

  function recovered() {
    restartAt = 0;
    clearTimeout(downTimer); downTimer = 0;
    clearTimeout(restartTimer); restartTimer = 0;
  }

  // One ICE restart per episode: later triggers while one is in flight are coalesced; if
  // the path is still down RESTART_RETRY_MS later (e.g. it was cut while the restart ran),
  // the episode restarts once more. The teller asks the expert, who makes every offer.
  function restartIce() {
    if (ended || (restartAt && Date.now() - restartAt < RESTART_RETRY_MS)) return;
    restartAt = Date.now();
    clearTimeout(restartTimer);
    restartTimer = setTimeout(function () { restartTimer = 0; if (isDown()) { restartAt = 0; restartIce(); } }, RESTART_RETRY_MS);
    sum.restarts += 1;
    root.setAttribute("data-ice-restarts", String(sum.restarts));
    if (role !== "expert") { send({ type: "restart-request" }); return; }
    chain = chain.then(doRestart).catch(function (e) { console.warn("ICE restart", e); });
  }

  async function doRestart() {
    if (ended) return;
    if (!pc) return newCall();
    if (pc.signalingState !== "stable") await pc.setLocalDescription({ type: "rollback" });
    await freshIce();
    pc.restartIce();
    await pc.setLocalDescription(await pc.createOffer({ iceRestart: true }));
    send({ type: "offer", sdp: pc.localDescription.sdp, restart: true });
  }

  // New TURN credentials for a restart (the old ones may have expired), waiting at most 2 s.
  function freshIce() {
    var timeout = new Promise(function (resolve) { setTimeout(resolve, 2000); });
    var got = fetchIce().then(function (cfg) { iceConfig = cfg; if (pc) pc.setConfiguration(cfg); }, function () {});
    return Promise.race([got, timeout]);
  }

  async function handle(msg) {
    switch (msg.type) {
      case "welcome":
        if (msg.peer_present && role === "expert") await newCall();
        else if (!msg.peer_present) setStatus("等待对方加入…");
        break;
      case "peer-joined":
        setStatus("对方已加入，正在建立连接…");
        if (role === "expert") await newCall();
        break;
      case "peer-left": setStatus("对方已离开，等待其重新加入…"); break;
      case "offer": await onOffer(msg); break;
      case "answer": // an answer to an offer that a newer one replaced is stale: drop it
        if (pc && pc.signalingState === "have-local-offer") { await pc.setRemoteDescription({ type: "answer", sdp: msg.sdp }); await flushCandidates(); }
        break;
      case "ice":
        if (!msg.candidate) break;
        if (pc && pc.remoteDescription) { try { await pc.addIceCandidate(msg.candidate); } catch (e) { /* stale */ } }
        else pending.push(msg.candidate);
        break;
      case "restart-request": if (role === "expert") restartIce(); break;
      case "chat": addChat(msg.text, false); break;
      case "error": setStatus(msg.message); break;
      case "mute": setStatus(msg.muted ? "对方已静音" : "对方已取消静音"); break;
      case "screen": setStatus(msg.on ? "对方正在共享屏幕" : "对方已停止共享屏幕"); break;
      case "recording": setRecording(msg.state); break;
      case "consent": refreshPanel(); break;
      case "panel": case "snapshot": case "concluded": refreshPanel(); break;
      case "hangup": finish(msg.reason === "timeout" ? "通话因长时间无人连接已结束" : "通话已结束"); break;
      case "server-shutdown": setStatus("服务器正在重启，稍后自动重连…"); break;
    }
  }

  function connect() {
    var proto = location.protocol === "https:" ? "wss:" : "ws:";
    ws = new WebSocket(proto + "//" + location.host + base + "/ws");
    ws.onopen = function () { backoff = 1000; };
    ws.onmessage = function (event) {
      var msg;
      try { msg = JSON.parse(event.data); } catch (e) { return; }
      chain = chain.then(function () { return handle(msg); }).catch(function (e) { setStatus("连接出错：" + e); });
    };
    ws.onclose = function (event) {
      if (ended) return;
      if (event.code === 4410) { finish("通话已结束"); return; }
      if (event.code >= 4400 && event.code < 4500) { setStatus(event.reason || "无法加入通话"); return; }
      setStatus("与服务器的连接中断，正在重连…");
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 15000);
    };
  }

  // --- the server's recorder (teller side, after consent) -------------------------------
  function mixedAudio() {
    var AC = window.AudioContext || window.webkitAudioContext;
    if (!AC) return localStream.getAudioTracks()[0] || null;
    if (!audioCtx) {
      audioCtx = new AC();
      mixDest = audioCtx.createMediaStreamDestination();
      if (localStream.getAudioTracks().length) audioCtx.createMediaStreamSource(localStream).connect(mixDest);
      if (ui.remote.srcObject) mixRemote(ui.remote.srcObject);
    }
    if (audioCtx.state === "suspended") audioCtx.resume();
    return mixDest.stream.getAudioTracks()[0];
  }
  function mixRemote(stream) {
    if (!audioCtx || !stream.getAudioTracks().length || stream._mixed) return;
    stream._mixed = true;
    audioCtx.createMediaStreamSource(stream).connect(mixDest);
  }

  function gathered(p, ms) {
    return new Promise(function (resolve) {
      if (p.iceGatheringState === "complete") return resolve();
      var timer = setTimeout(resolve, ms);
      p.addEventListener("icegatheringstatechange", function () {
        if (p.iceGatheringState === "complete") { clearTimeout(timer); resolve(); }
      });
    });
  }

  async function startRecorder() {
    var panel = $("assist-panel");
    if (role !== "teller" || ended || recorderPc || recorderBusy) return;
    if (root.getAttribute("data-record") !== "required" || !panel || panel.getAttribute("data-consent") !== "yes") return;
    recorderBusy = true;
    var rp = new RTCPeerConnection(iceConfig);
    try {
      var video = currentVideo(), audio = mixedAudio();
      if (video) rp.addTrack(video, localStream);
      if (audio) rp.addTrack(audio);
      await rp.setLocalDescription(await rp.createOffer());
      await gathered(rp, 4000);
      var resp = await fetch(base + "/recorder", {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
        body: JSON.stringify({ sdp: rp.localDescription.sdp, type: "offer" })
      });
      var body = await resp.json().catch(function () { return {}; });
      if (!resp.ok) {
        rp.close();
        if (resp.status >= 500) setTimeout(startRecorder, 3000);
        else if (resp.status !== 409 || !/已经结束/.test(body.error || "")) setStatus("录像未能开始：" + (body.error || resp.status));
        return;
      }
      await rp.setRemoteDescription(body);
      recorderPc = rp;
      rp.onconnectionstatechange = function () {
        if (rp.connectionState === "failed" && recorderPc === rp) {
          recorderPc = null; rp.close();
          setTimeout(startRecorder, 2000);
        }
      };
    } catch (e) {
      rp.close();
      setStatus("录像连接失败：" + e);
    } finally { recorderBusy = false; }
  }

  // --- quality and the stats summary -----------------------------------------------------
  async function sample() {
    if (!pc || pc.connectionState !== "connected") return;
    var report = await pc.getStats(), now = Date.now(), cur = { bytes: 0, lost: 0, recv: 0, rtt: null, decoded: 0, dropped: 0 };
    report.forEach(function (s) {
      if (s.type === "inbound-rtp") {
        cur.bytes += s.bytesReceived || 0; cur.lost += Math.max(0, s.packetsLost || 0); cur.recv += s.packetsReceived || 0;
        if (s.kind === "video") { cur.decoded += s.framesDecoded || 0; cur.dropped += s.framesDropped || 0; }
      } else if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded" && s.currentRoundTripTime !== undefined) {
        cur.rtt = s.currentRoundTripTime * 1000;
      }
    });
    if (prev) {
      var dt = (now - prev.at) / 1000, dLost = cur.lost - prev.lost, dRecv = cur.recv - prev.recv;
      var loss = dLost + dRecv > 0 ? 100 * dLost / (dLost + dRecv) : 0;
      var kbps = dt > 0 ? (cur.bytes - prev.bytes) * 8 / dt / 1000 : 0;
      var rtt = cur.rtt || 0;
      var level = (loss > 8 || rtt > 800 || kbps < 30) ? "bad" : (loss > 2 || rtt > 300 || kbps < 150) ? "warning" : "good";
      if (ui.quality) {
        ui.quality.setAttribute("data-level", level);
        ui.quality.textContent = { good: "信号良好", warning: "信号一般", bad: "信号差" }[level] +
          "（" + Math.round(rtt) + " ms，" + Math.round(kbps) + " kbps，丢包 " + loss.toFixed(1) + "%）";
      }
      sum.samples += 1; sum.rtt += rtt; sum.rttMax = Math.max(sum.rttMax, rtt); sum.kbps += kbps;
      sum.kbpsMin = sum.samples === 1 ? kbps : Math.min(sum.kbpsMin, kbps); sum[level] += 1;
    }
    sum.lost = cur.lost; sum.recv = cur.recv; sum.decoded = cur.decoded; sum.dropped = cur.dropped;
    cur.at = now; prev = cur;
  }

  function summary() {
    var n = Math.max(sum.samples, 1);
    return {
      duration_s: (Date.now() - started) / 1000, samples: sum.samples, rtt_ms_avg: sum.rtt / n,
      rtt_ms_max: sum.rttMax, bitrate_kbps_avg: sum.kbps / n, bitrate_kbps_min: sum.kbpsMin,
      loss_pct: sum.lost + sum.recv > 0 ? 100 * sum.lost / (sum.lost + sum.recv) : 0,
      frames_decoded: sum.decoded, frames_dropped: sum.dropped, ice_restarts: sum.restarts,
      good: sum.good, warning: sum.warning, bad: sum.bad
    };
  }

  function postStats(beacon) {
    if (statsPosted || (!sum.samples && !prev)) return;
    statsPosted = true;
    if (beacon && navigator.sendBeacon) {
      var data = new URLSearchParams({ csrf_token: csrf(), summary: JSON.stringify(summary()) });
      navigator.sendBeacon(base + "/stats", data);
      return;
    }
    fetch(base + "/stats", {
      method: "POST", keepalive: true, credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() }, body: JSON.stringify(summary())
    });
  }

  // --- chat, hang-up, the end --------------------------------------------------------------
  function addChat(text, mine) {
    var li = document.createElement("li");
    li.className = mine ? "mine" : "theirs";
    li.textContent = text;
    ui.chatLog.appendChild(li);
    ui.chatLog.scrollTop = ui.chatLog.scrollHeight;
  }

  function finish(text) {
    if (ended) return;
    ended = true;
    postStats(false);
    closePc();
    if (recorderPc) { recorderPc.close(); recorderPc = null; }
    localStream.getTracks().forEach(function (t) { t.stop(); });
    if (screenTrack) screenTrack.stop();
    if (ws) ws.close();
    setStatus(text);
    setTimeout(function () { location.reload(); }, 1200);
  }

  ui.mute.addEventListener("click", toggleMute);
  ui.camera.addEventListener("change", switchCamera);
  ui.screen.addEventListener("click", toggleScreen);
  ui.unmute.addEventListener("click", function () { ui.remote.muted = false; ui.unmute.classList.add("hide"); });
  ui.hangup.addEventListener("submit", function (e) {
    if (ws && ws.readyState === 1) { e.preventDefault(); send({ type: "hangup" }); }
  });
  ui.chatForm.addEventListener("submit", function (e) {
    e.preventDefault();
    var text = ui.chatInput.value.trim();
    if (!text) return;
    send({ type: "chat", text: text });
    addChat(text, true);
    ui.chatInput.value = "";
  });
  document.body.addEventListener("htmx:afterSettle", function () { startRecorder(); });
  window.addEventListener("online", function () { if (pc) restartIce(); });
  if (navigator.connection && navigator.connection.addEventListener) {
    navigator.connection.addEventListener("change", function () { if (pc) restartIce(); });
  }
  window.addEventListener("pagehide", function () { postStats(true); });
  setInterval(function () { sample().catch(function () {}); }, 2000);
  setInterval(function () { send({ type: "ping" }); }, 20000);

  function fetchIce() {
    return fetch(base + "/ice", { credentials: "same-origin" }).then(function (r) {
      if (!r.ok) throw new Error("ice " + r.status);
      return r.json();
    });
  }

  // Start the ICE-server fetch, the camera and the WebSocket together; signaling messages
  // wait (on the handling chain) until the first two are ready.
  chain = Promise.all([
    fetchIce().then(function (cfg) { iceConfig = cfg; }, function () { setStatus("无法获取连接配置"); }),
    openMedia()
  ]).then(function () { startRecorder(); });
  connect();
})();
