// 评价器: return to a blank form after a rating (the thank-you page also has a meta refresh)
// or after a period without touches, so the next applicant never sees someone else's input.
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
})();
