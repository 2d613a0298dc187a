// Sends a form marked data-submit-once once: a double tap on its button does
// not post twice. The server keeps one application either way; this only
// spares the fan a second wait.
(function () {
  "use strict";
  var forms = document.querySelectorAll("form[data-submit-once]");
  Array.prototype.forEach.call(forms, function (form) {
    form.addEventListener("submit", function () {
      Array.prototype.forEach.call(form.querySelectorAll("button[type=submit]"), function (button) {
        button.dataset.label = button.textContent;
        button.textContent = button.dataset.busyLabel || button.textContent;
        button.disabled = true;
      });
    });
  });
  // The back button may restore the page as it was left: buttons disabled.
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) {
      return;
    }
    Array.prototype.forEach.call(document.querySelectorAll("button[data-label]"), function (button) {
      button.textContent = button.dataset.label;
      button.disabled = false;
    });
  });
})();
