/* Counter panel: when the outlet's queue moves (pushed by the event hub), refresh the
 * waiting list with htmx. The current-ticket card changes only by this counter's own
 * buttons, so what the teller is typing there is never wiped by a push.
 *
 * With 8 counters every event would otherwise cost 8 panel renders: only the steps that
 * change a waiting list refresh it (a reconnect's first message too), a burst of events
 * within REFRESH_MS becomes one refresh, and never two run at once (one more follows). */
(function () {
  "use strict";
  var panel = document.getElementById("queue-panel");
  if (!panel || !window.queueLive) return;
  var REFRESH_MS = 250;
  var MOVES_WAITING = { issue: 1, call: 1, transfer: 1, cancel: 1 };
  var timer = null, busy = false, again = false;

  function refresh() {
    timer = null;
    var list = document.getElementById("waiting-list");
    if (!list || !window.htmx) return;
    if (busy) { again = true; return; }
    busy = true;
    var done = function () {
      busy = false;
      if (again) { again = false; schedule(); }
    };
    Promise.resolve(window.htmx.ajax("GET", "/queue/", { target: "#waiting-list", select: "#waiting-list", swap: "outerHTML" }))
      .then(done, done);
  }
  function schedule() {
    if (!timer) timer = setTimeout(refresh, REFRESH_MS);
  }
  window.queueLive("/queue/live", function (msg) {
    if (msg.type !== "changed") return;
    if (msg.step && !MOVES_WAITING[msg.step]) return;  // serve, hold, done …: no waiting list moved
    schedule();
  });
})();
