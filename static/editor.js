// Instruction editor keys (a file of its own: the content security policy forbids inline scripts).
//   Ctrl+S / Cmd+S   save the draft now          Ctrl+Enter   submit the draft for review
//   j / k            next / previous preview instance (outside text fields)
(function () {
  "use strict";
  var position = -1;  // which preview instance has the focus; kept when the preview re-renders
  function samples() { return Array.from(document.querySelectorAll("#preview article.sample")); }
  function focusAt(index) {
    var all = samples();
    if (!all.length) { return; }
    position = Math.max(0, Math.min(all.length - 1, index));
    all[position].focus();
    all[position].scrollIntoView({block: "nearest"});
  }
  function step(delta) { focusAt(position + delta); }
  document.addEventListener("htmx:afterSettle", function (event) {
    var previewHadFocus = position >= 0 && (document.activeElement === document.body || !document.activeElement);
    if (event.target.id === "preview" && previewHadFocus) { focusAt(position); }
  });
  document.addEventListener("focusin", function (event) {
    var index = samples().indexOf(event.target);
    if (index < 0 && !event.target.closest("#preview")) { position = -1; }
  });
  document.addEventListener("keydown", function (event) {
    var modifier = event.ctrlKey || event.metaKey;
    if (modifier && event.key === "s") {
      event.preventDefault();
      htmx.trigger("#draft-form", "submit");
    } else if (modifier && event.key === "Enter") {
      event.preventDefault();
      var submit = document.getElementById("submit-form");
      if (submit) { submit.requestSubmit(); }
    } else if (!modifier && (event.key === "j" || event.key === "k")) {
      var tag = (event.target.tagName || "").toLowerCase();
      if (tag === "textarea" || tag === "input" || tag === "select") { return; }
      event.preventDefault();
      step(event.key === "j" ? 1 : -1);
    }
  });
})();
