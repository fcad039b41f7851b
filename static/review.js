// Reviewer queue keys (a file of its own: the content security policy forbids inline scripts).
//   a letter or digit   the choice marked with it (data-key); a choice that needs a comment focuses the
//                       comment field first, and Ctrl+Enter there sends it with that choice
//   j / k               move the selection between the choices      Enter   take the selected choice
//   s                   skip (the item goes back to the queue)      ?       help
// While a decision is on its way (and until htmx has wired up the next item) keys are ignored, so a fast or
// repeated key never decides the next item by accident, nor posts a form htmx has not taken over yet.
(function () {
  "use strict";
  var armed = null;  // the choice waiting for its comment
  function setBusy(busy) { document.documentElement.dataset.review = busy ? "busy" : "ready"; }
  setBusy(!document.querySelector("#item, #queue-empty"));  // busy while the first item is being fetched
  document.addEventListener("htmx:beforeRequest", function () { setBusy(true); });
  document.addEventListener("htmx:afterRequest", function (event) {
    if (!event.detail.successful) { setBusy(false); }  // refused (a toast says why): the item stays
  });
  function choices() { return Array.from(document.querySelectorAll("#review-item [data-choice]")); }
  function typing(target) {
    var tag = (target.tagName || "").toLowerCase();
    return tag === "textarea" || tag === "input" || tag === "select" || target.isContentEditable;
  }
  function take(button) {
    var form = button.closest("form");
    var comment = form && form.querySelector("[data-comment]");
    if (button.hasAttribute("data-needs-comment") && comment && !comment.value.trim()) {
      armed = button;
      comment.placeholder = "Why? (Ctrl+Enter sends “" + button.textContent.trim().replace(/\s+\S+$/, "") + "”)";
      comment.focus();
      return;
    }
    button.click();  // a real click: htmx sends the clicked button's name and value with the form
  }
  function move(delta) {
    var all = choices();
    if (!all.length) { return; }
    var index = all.indexOf(document.activeElement);
    index = index < 0 ? (delta > 0 ? 0 : all.length - 1) : Math.max(0, Math.min(all.length - 1, index + delta));
    all[index].focus();
  }
  function toggleHelp() {
    var help = document.getElementById("review-help");
    if (!help) { return; }
    if (help.open) { help.close(); } else { help.showModal(); }
  }
  document.addEventListener("click", function (event) {
    if (event.target.closest("#help-button")) { toggleHelp(); }
  });
  document.addEventListener("htmx:afterSettle", function () {
    setBusy(!document.querySelector("#item, #queue-empty"));  // busy while the first item is being fetched
    armed = null;
    var answer = document.querySelector("#review-item [data-answer]");
    if (answer) { answer.focus(); } else if (document.activeElement === document.body || !document.activeElement) {
      var first = choices()[0];
      if (first) { first.focus(); }
    }
  });
  document.addEventListener("keydown", function (event) {
    if (event.altKey || event.defaultPrevented) { return; }
    var modifier = event.ctrlKey || event.metaKey;
    if (modifier && event.key === "Enter" && armed && typing(event.target)) {
      if (document.documentElement.dataset.review === "busy") { return; }
      event.preventDefault();
      var button = armed;
      armed = null;
      button.click();
      return;
    }
    if (modifier || typing(event.target)) { return; }
    var help = document.getElementById("review-help");
    if (event.key === "?") { event.preventDefault(); toggleHelp(); return; }
    if (help && help.open) { return; }
    if (document.documentElement.dataset.review === "busy") { event.preventDefault(); return; }
    if (event.key === "j" || event.key === "k") { event.preventDefault(); move(event.key === "j" ? 1 : -1); return; }
    if (event.key === "Enter" && choices().indexOf(document.activeElement) >= 0) {
      event.preventDefault();
      take(document.activeElement);
      return;
    }
    var target = document.querySelector('#review-item [data-key="' + CSS.escape(event.key) + '"]');
    if (target) { event.preventDefault(); take(target); }
  });
})();
