/* The kiosk's touch keypad: a touch screen without a keyboard. Every input with
 * data-keypad="digits" (phone, check code), "id" (ID number: digits and X) or "code"
 * (case numbers and booking codes: digits and letters) gets an on-screen keypad while it
 * has focus. The system keyboard is suppressed (inputmode=none) so the two never overlap. */
(function () {
  "use strict";
  var inputs = document.querySelectorAll("input[data-keypad]");
  if (!inputs.length) return;
  var LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ";
  var pad = document.createElement("div");
  pad.className = "keypad hide";
  pad.id = "keypad";
  pad.setAttribute("role", "group");
  pad.setAttribute("aria-label", "屏幕键盘");
  var target = null;

  function key(label, value, cls) {
    var b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    b.className = "key" + (cls ? " " + cls : "");
    b.setAttribute("data-key", value);
    return b;
  }
  function build(kind) {
    pad.textContent = "";
    var keys = "1234567890".split("");
    if (kind === "id") keys.push("X");
    if (kind === "code") keys = keys.concat(LETTERS.split(""));
    keys.forEach(function (k) { pad.appendChild(key(k, k)); });
    pad.appendChild(key("退格", "back", "wide"));
    pad.appendChild(key("清空", "clear", "wide"));
    pad.appendChild(key("完成", "done", "wide done"));
  }
  function open(input) {
    target = input;
    build(input.getAttribute("data-keypad"));
    input.insertAdjacentElement("afterend", pad);
    pad.classList.remove("hide");
  }
  pad.addEventListener("pointerdown", function (ev) { ev.preventDefault(); });  // keep the focus
  pad.addEventListener("click", function (ev) {
    var b = ev.target && ev.target.closest ? ev.target.closest("[data-key]") : null;
    if (!b || !target) return;
    var k = b.getAttribute("data-key");
    var max = parseInt(target.getAttribute("maxlength") || "64", 10);
    if (k === "back") target.value = target.value.slice(0, -1);
    else if (k === "clear") target.value = "";
    else if (k === "done") { pad.classList.add("hide"); target.blur(); return; }
    else if (target.value.length < max) target.value += k;
    target.dispatchEvent(new Event("input", { bubbles: true }));
  });
  Array.prototype.forEach.call(inputs, function (input) {
    input.setAttribute("inputmode", "none");
    input.addEventListener("focus", function () { open(input); });
  });
})();
