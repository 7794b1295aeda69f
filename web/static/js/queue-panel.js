/* Counter panel: when the outlet's queue moves (pushed by the event hub), refresh the
 * waiting list with htmx. The current-ticket card changes only by this counter's own
 * buttons, so what the teller is typing there is never wiped by a push. */
(function () {
  "use strict";
  var panel = document.getElementById("queue-panel");
  if (!panel || !window.queueLive) return;
  window.queueLive("/queue/live", function (msg) {
    if (msg.type !== "changed") return;
    var list = document.getElementById("waiting-list");
    if (list && window.htmx) {
      window.htmx.ajax("GET", "/queue/", { target: "#waiting-list", select: "#waiting-list", swap: "outerHTML" });
    }
  });
})();
