// Copy buttons (data-copy="text"): the clipboard API where the page is a secure context,
// else a temporary selection with execCommand (plain-HTTP counters on a LAN).
document.addEventListener("click", function (event) {
  var button = event.target && event.target.closest ? event.target.closest("[data-copy]") : null;
  if (!button) return;
  event.preventDefault();
  var text = button.getAttribute("data-copy");
  function done() {
    var label = button.textContent;
    button.textContent = "已复制";
    setTimeout(function () { button.textContent = label; }, 1500);
  }
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done);
    return;
  }
  var area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.className = "sr-only";
  document.body.appendChild(area);
  area.select();
  try { if (document.execCommand("copy")) done(); } finally { document.body.removeChild(area); }
});
