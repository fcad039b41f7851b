// Instruction editor keys (a file of its own: the content security policy forbids inline scripts).
//   Ctrl+S / Cmd+S   save the draft now          Ctrl+Enter   submit the draft for review
//   j / k            next / previous preview instance (outside text fields)
(function () {
  "use strict";
  function samples() { return Array.from(document.querySelectorAll("#preview article.sample")); }
  function step(delta) {
    var all = samples();
    if (!all.length) { return; }
    var current = all.indexOf(document.activeElement);
    var next = all[Math.max(0, Math.min(all.length - 1, current + delta))] || all[0];
    next.focus();
    next.scrollIntoView({block: "nearest"});
  }
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
