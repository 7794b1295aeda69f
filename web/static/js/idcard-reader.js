/* ID-card reader adapter (居民身份证阅读器). The reader is vendor hardware behind a small
 * bridge program on the same PC, reached over the common localhost WebSocket; the page
 * names it in data-idcard-bridge (SERVICEPOINT_IDCARD_BRIDGE, e.g. ws://127.0.0.1:18889/idcard)
 * and the page's CSP allows connect-src to exactly that origin.
 *
 * Protocol (JSON text frames; docs/queue.md "ID-card reader"):
 *   page → bridge  {"type": "read"}                       ask for a read now
 *   bridge → page  {"type": "card", "id_number": "…", …}  a card was read (also unasked,
 *                                                          when a card is placed)
 *                  {"type": "status", "reader": "ready" | "no_reader"}
 *                  {"type": "error", "message": "…"}
 * Only id_number is used: it fills input[data-idcard="id_number"]; the name, photo and
 * address a bridge may send are ignored and never leave the page. Without a bridge (or
 * when it is down) the touch keypad is the way in; the adapter retries quietly. */
(function () {
  "use strict";
  var status = document.querySelector("[data-idcard-bridge]");
  var url = status ? status.getAttribute("data-idcard-bridge") : "";
  if (!status || !url || !window.WebSocket) return;
  var field = document.querySelector("input[data-idcard=id_number]");
  var delay = 1000;
  var ID = /^[0-9]{17}[0-9X]$/;

  function say(text, state) {
    status.textContent = text;
    status.setAttribute("data-state", state);
  }
  function connect() {
    var ws;
    try { ws = new WebSocket(url); } catch (e) { return retry(); }
    ws.onopen = function () {
      delay = 1000;
      say("读卡器已连接：请将身份证放在读卡区", "ready");
      ws.send(JSON.stringify({ type: "read" }));
    };
    ws.onmessage = function (ev) {
      var msg;
      try { msg = JSON.parse(ev.data); } catch (e) { return; }
      if (msg.type === "card" && field) {
        var id = String(msg.id_number || "").toUpperCase();
        if (!ID.test(id)) { say("未能识别该证件，请重新放置或用键盘输入", "error"); return; }
        field.value = id;
        field.dispatchEvent(new Event("input", { bubbles: true }));
        say("已读取身份证", "read");
      } else if (msg.type === "status") {
        say(msg.reader === "ready" ? "读卡器已连接：请将身份证放在读卡区" : "未检测到读卡器，请用屏幕键盘输入", msg.reader || "");
      } else if (msg.type === "error") {
        say("读卡失败，请重新放置身份证或用屏幕键盘输入", "error");
      }
    };
    ws.onclose = function () {
      say("读卡器未连接，请用屏幕键盘输入身份证号码", "offline");
      retry();
    };
  }
  function retry() {
    setTimeout(connect, delay);
    delay = Math.min(delay * 2, 30000);
  }
  connect();
})();
