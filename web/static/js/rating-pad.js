// 评价器: return to a blank form after a rating (the thank-you page also has a meta refresh)
// or after a period without touches, so the next applicant never sees someone else's input.
// When the teller links the case being served, the server pushes "linked" over the pad's
// WebSocket (event hub) and the page reloads showing that case's matter name.
(function () {
  "use strict";
  var pad = document.getElementById("rating-pad");
  if (!pad) { return; }
  var done = document.getElementById("rating-done");
  var seconds = Number(done ? pad.dataset.resetSeconds : pad.dataset.idleSeconds) || 120;
  var timer = null;
  function arm() {
    if (timer) { clearTimeout(timer); }
    timer = setTimeout(function () { window.location.replace("/rate/pad"); }, seconds * 1000);
  }
  ["pointerdown", "keydown", "input"].forEach(function (name) {
    document.addEventListener(name, arm, { passive: true });
  });
  arm();
  if (pad.dataset.live && window.queueLive) {
    window.queueLive(pad.dataset.live, function (msg) {
      if (msg.type === "linked") { window.location.replace("/rate/pad"); }
      if (msg.type === "hello") { pad.setAttribute("data-connected", "1"); }
    });
  }
})();
