/* Kiosk: after data-idle seconds without a touch, a data-countdown second countdown, then
 * everything entered is wiped by going back to the home screen (a fresh page). A ticket
 * page prints itself once (the kiosk's thermal printer, 80 mm print CSS). */
(function () {
  "use strict";
  var main = document.getElementById("kiosk-main");
  if (!main) return;
  var idle = parseInt(main.getAttribute("data-idle") || "90", 10);
  var countdown = parseInt(main.getAttribute("data-countdown") || "10", 10);
  var home = main.getAttribute("data-home") || "/queue/kiosk";
  var overlay = document.getElementById("idle-overlay");
  var seconds = document.getElementById("idle-seconds");
  var left = idle + countdown;

  function reset() {
    left = idle + countdown;
    if (overlay) overlay.classList.add("hide");
  }
  function wipe() {
    Array.prototype.forEach.call(document.querySelectorAll("input[type=text], input[type=tel], input:not([type])"),
      function (i) { i.value = ""; });
    location.replace(home);
  }
  ["pointerdown", "keydown", "touchstart"].forEach(function (name) {
    document.addEventListener(name, reset, { passive: true });
  });
  var stay = document.getElementById("idle-stay");
  if (stay) stay.addEventListener("click", reset);
  setInterval(function () {
    left -= 1;
    if (left <= countdown && overlay) {
      overlay.classList.remove("hide");
      if (seconds) seconds.textContent = String(Math.max(left, 0));
    }
    if (left <= 0) wipe();
  }, 1000);
  var printNow = document.getElementById("print-now");
  if (printNow) printNow.addEventListener("click", function () { window.print(); });
  if (main.getAttribute("data-autoprint") === "1" && window.print) {
    setTimeout(function () { window.print(); }, 300);
  }
})();
