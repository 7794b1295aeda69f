/* Kiosk: after data-idle seconds without a touch, a data-countdown second countdown, then
 * everything entered is wiped by going back to the home screen (a fresh page). The element
 * carrying data-idle is #kiosk-main on kiosk pages, or the 好差评 page opened from the kiosk.
 * A ticket page prints itself once (the kiosk's thermal printer, 80 mm print CSS); on the
 * 自助打印 page each [data-print-doc] button prints only its own document. */
(function () {
  "use strict";
  var main = document.getElementById("kiosk-main") || document.querySelector("[data-idle]");
  if (!main) return;
  var idle = parseInt(main.getAttribute("data-idle") || "90", 10);
  var countdown = parseInt(main.getAttribute("data-countdown") || "10", 10);
  var home = main.getAttribute("data-home") || "/queue/kiosk";
  var overlay = document.getElementById("idle-overlay");
  var seconds = document.getElementById("idle-seconds");
  var left = idle + countdown;

  function show(on) {
    if (!overlay) return;
    overlay.classList.toggle("hide", !on);
    overlay.hidden = !on;
  }
  function reset() {
    left = idle + countdown;
    show(false);
  }
  function wipe() {
    Array.prototype.forEach.call(document.querySelectorAll("input:not([type=hidden]):not([type=radio]):not([type=checkbox]), textarea"),
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
    if (left <= countdown) {
      show(true);
      if (seconds) seconds.textContent = String(Math.max(left, 0));
    }
    if (left <= 0) wipe();
  }, 1000);
  var printNow = document.getElementById("print-now");
  if (printNow) printNow.addEventListener("click", function () { window.print(); });
  document.addEventListener("click", function (ev) {
    var button = ev.target && ev.target.closest ? ev.target.closest("[data-print-doc]") : null;
    if (!button) return;
    var doc = document.getElementById(button.getAttribute("data-print-doc"));
    if (!doc) return;
    document.body.classList.add("printing-one");
    doc.classList.add("print-target");
    window.print();  // blocks until the print dialog (or the kiosk printer) is done
    doc.classList.remove("print-target");
    document.body.classList.remove("printing-one");
  });
  if (main.getAttribute("data-autoprint") === "1" && window.print) {
    setTimeout(function () { window.print(); }, 300);
  }
})();
