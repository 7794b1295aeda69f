/* A ticket's public page: the live position pushed over its WebSocket. */
(function () {
  "use strict";
  var main = document.getElementById("position");
  if (!main || !window.queueLive) return;
  function show(id, on) { var e = document.getElementById(id); if (e) e.classList.toggle("hide", !on); }
  function text(id, value) { var e = document.getElementById(id); if (e) e.textContent = value; }
  window.queueLive(main.getAttribute("data-live"), function (msg) {
    if (msg.type !== "position") return;
    text("pos-state", msg.state_label);
    text("pos-ahead", String(msg.ahead));
    text("pos-counter", msg.counter || "");
    show("pos-ahead-line", msg.state === "waiting");
    show("pos-counter-line", !!msg.counter && (msg.state === "called" || msg.state === "serving"));
  });
})();
