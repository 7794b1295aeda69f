/* One reconnecting WebSocket to a queue feed (/queue/live, /queue/display/live,
 * /queue/t/<code>/live). The server sends a full message on connect, so a reconnect
 * catches up; nothing polls. Used by the panel, the hall display and the ticket page. */
(function () {
  "use strict";
  window.queueLive = function (path, onMessage, onState) {
    var delay = 1000;
    function connect() {
      var proto = location.protocol === "https:" ? "wss:" : "ws:";
      var ws = new WebSocket(proto + "//" + location.host + path);
      ws.onopen = function () { delay = 1000; if (onState) onState(true); };
      ws.onmessage = function (event) {
        var msg;
        try { msg = JSON.parse(event.data); } catch (e) { return; }
        onMessage(msg);
      };
      ws.onclose = function (event) {
        if (onState) onState(false);
        if (event.code >= 4400 && event.code < 4500) return; // refused: retrying will not help
        setTimeout(connect, delay);
        delay = Math.min(delay * 2, 30000);
      };
    }
    connect();
  };
})();
