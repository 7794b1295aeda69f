/* Live updates for the expert queue and the teller's waiting page: one WebSocket
 * (/assist/events) pushes changes; the page then refreshes its fragment with htmx.
 * No polling. Without JavaScript the pages still work with their 刷新 links. */
(function () {
  "use strict";

  if (window.htmx) {
    // Swap 4xx fragments too: refused forms come back as 422 with the reason in place.
    window.htmx.config.responseHandling = [
      { code: "204", swap: false },
      { code: "[23]..", swap: true },
      { code: "[45]..", swap: true, error: true },
      { code: "...", swap: false }
    ];
  }

  function region() {
    return document.getElementById("assist-status") || document.getElementById("assist-queue");
  }
  if (!region()) return;

  var socket = null;
  var delay = 1000;

  function refresh() {
    // The refresher sits outside the region it replaces, so a change pushed while a refresh
    // is in flight is queued on an element that stays in the page (never lost).
    var el = document.getElementById("assist-refresher");
    if (el && window.htmx) window.htmx.trigger(el, "assist-refresh");
  }

  function connect() {
    var proto = location.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(proto + "//" + location.host + "/assist/events");
    socket.onopen = function () {
      delay = 1000;
      refresh(); // catch up with anything that happened while disconnected
    };
    socket.onmessage = function (event) {
      var msg;
      try { msg = JSON.parse(event.data); } catch (e) { return; }
      if (msg.type === "accepted") {
        var status = document.getElementById("assist-status");
        if (status && String(msg.request) === status.getAttribute("data-request-id")) {
          location.href = msg.url;
          return;
        }
        refresh();
      } else if (msg.type === "queue") {
        refresh();
      }
    };
    socket.onclose = function (event) {
      if (event.code >= 4400 && event.code < 4500) return; // refused: retrying will not help
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    };
  }

  setInterval(function () {
    if (socket && socket.readyState === 1) socket.send('{"type":"ping"}');
  }, 25000);
  connect();
})();
