/* Hall display (1920×1080): renders the board pushed over its WebSocket; on a call it
 * plays a chime (Web Audio, generated here) and, where the browser has a Chinese voice,
 * speaks "请 A012 号到 3 号窗口办理" with the Web Speech API. Never a network TTS. */
(function () {
  "use strict";
  var main = document.querySelector("[data-live]");
  if (!main || !window.queueLive) return;
  var audio = null;

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function fill(id, items, render, empty) {
    var list = document.getElementById(id);
    while (list.firstChild) list.removeChild(list.firstChild);
    if (!items.length && empty) list.appendChild(el("li", "empty", empty));
    items.forEach(function (it) { list.appendChild(render(it)); });
  }
  function render(board) {
    fill("calls", board.calls, function (c) {
      var li = el("li");
      li.appendChild(el("span", "num", c.ticket));
      li.appendChild(el("span", "arrow", "请到"));
      li.appendChild(el("span", "ctr", c.counter_name));
      return li;
    }, "—");
    fill("recent", board.recent, function (c) {
      var li = el("li");
      li.appendChild(el("span", "num", c.ticket));
      li.appendChild(document.createTextNode(" " + c.counter_name));
      return li;
    });
    fill("waiting", board.waiting, function (w) {
      var li = el("li");
      li.appendChild(el("span", "wname", w.line + " " + w.name));
      li.appendChild(el("span", "wcount", String(w.count)));
      return li;
    });
  }
  function chime() {
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      [880, 660].forEach(function (freq, i) {
        var osc = audio.createOscillator(), gain = audio.createGain();
        var t = audio.currentTime + i * 0.35;
        osc.frequency.value = freq;
        gain.gain.setValueAtTime(0.0001, t);
        gain.gain.exponentialRampToValueAtTime(0.3, t + 0.02);
        gain.gain.exponentialRampToValueAtTime(0.0001, t + 0.3);
        osc.connect(gain); gain.connect(audio.destination);
        osc.start(t); osc.stop(t + 0.32);
      });
    } catch (e) { /* no audio device */ }
  }
  // Only a voice that runs on this machine (localService): a network voice (e.g. "Google 普通话")
  // would send every call text out of the hall. None → the chime and the screen only, said on
  // the display's status line.
  var voiceStatus = document.getElementById("voice-status");
  function localVoice() {
    if (!window.speechSynthesis) return null;
    var voices = window.speechSynthesis.getVoices().filter(function (v) {
      return /^zh/i.test(v.lang) && v.localService === true;
    });
    return voices.length ? voices[0] : null;
  }
  function showVoice() {
    var v = localVoice();
    document.body.setAttribute("data-voice", v ? "local" : "none");
    if (voiceStatus) {
      voiceStatus.textContent = v ? "语音播报：本机中文语音（" + v.name + "）"
                                  : "语音播报：本机无中文语音，仅显示文字并提示音";
    }
  }
  showVoice();
  if (window.speechSynthesis && window.speechSynthesis.addEventListener) {
    window.speechSynthesis.addEventListener("voiceschanged", showVoice);
  }
  function speak(a) {
    var voice = localVoice();
    if (!voice) return; // no local Chinese voice here: the chime and the screen suffice
    var number = a.ticket.split("").join(" ");
    var u = new SpeechSynthesisUtterance("请 " + number + " 号到 " + a.counter + " 号窗口办理");
    u.lang = "zh-CN";
    u.voice = voice;
    u.rate = 0.9;
    window.speechSynthesis.speak(u);
  }
  function announce(a) {
    document.body.setAttribute("data-announced", a.ticket + "@" + a.counter);
    var calls = document.getElementById("calls");
    if (calls) { calls.classList.remove("flash"); void calls.offsetWidth; calls.classList.add("flash"); }
    chime();
    setTimeout(function () { speak(a); }, 700);
  }
  var status = document.getElementById("display-status");
  window.queueLive(main.getAttribute("data-live"), function (msg) {
    if (msg.type !== "board") return;
    render(msg.board);
    if (msg.announce) announce(msg.announce);
    document.body.setAttribute("data-seq", String(msg.seq || 0));
  }, function (up) {
    if (status) { status.textContent = up ? "" : "连接中断，正在重连…"; }
  });
  var button = document.getElementById("enable-sound");
  if (button) {
    button.addEventListener("click", function () {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      audio.resume();
      button.classList.add("hide");
    });
  }
  var clock = document.getElementById("display-clock");
  function tick() {
    if (clock) clock.textContent = new Date().toLocaleTimeString("zh-CN", { hour12: false, timeZone: "Asia/Shanghai" });
  }
  tick();
  setInterval(tick, 1000);
})();
