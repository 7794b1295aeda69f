// Print buttons on notices (no inline scripts: strict CSP).
document.addEventListener("click", function (event) {
  var target = event.target;
  if (target && target.closest && target.closest("[data-print]")) {
    event.preventDefault();
    window.print();
  }
});
