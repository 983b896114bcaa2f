// Console behaviour that needs script (served from here: no inline script, no CDN).
// A button with data-copy-target="ID" copies the value or text of element ID.
document.addEventListener("click", function (event) {
  var button = event.target.closest("[data-copy-target]");
  if (!button) { return; }
  var source = document.getElementById(button.getAttribute("data-copy-target"));
  if (!source) { return; }
  var text = source.value !== undefined ? source.value : source.textContent;
  var done = function () { button.textContent = "Copied"; button.classList.add("copied"); };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done);
  } else {
    if (source.select) { source.select(); }
    document.execCommand("copy");
    done();
  }
});
