// Instance grid keys (a file of its own: the content security policy forbids inline scripts).
//   j / k    the next / previous instance      Enter   open it
//   p        propose the model's suggestion for it (a fix a second person decides; the card says so)
// Keys typed into the filters are left alone.
(function () {
  "use strict";
  function cards() { return Array.from(document.querySelectorAll("#instance-grid .instance-card")); }
  function typing(target) {
    var tag = (target.tagName || "").toLowerCase();
    return tag === "textarea" || tag === "input" || tag === "select" || target.isContentEditable;
  }
  function current() { return document.activeElement && document.activeElement.closest(".instance-card"); }
  function move(delta) {
    var all = cards();
    if (!all.length) { return; }
    var index = all.indexOf(current());
    index = index < 0 ? (delta > 0 ? 0 : all.length - 1) : Math.max(0, Math.min(all.length - 1, index + delta));
    all[index].focus();
    all[index].scrollIntoView({block: "nearest"});
  }
  document.addEventListener("keydown", function (event) {
    if (event.altKey || event.ctrlKey || event.metaKey || event.defaultPrevented || typing(event.target)) { return; }
    var card = current();
    if (event.key === "j") { move(1); }
    else if (event.key === "k") { move(-1); }
    else if (event.key === "Enter" && card && document.activeElement === card) {
      var link = card.querySelector("a.thumb, .source-id a");
      if (link) { link.click(); }
    } else if (event.key === "p" && card) {
      var propose = card.querySelector("form.suggestion button[type=submit]");
      if (!propose) { return; }
      propose.click();
      // htmx swaps the form for the card's "proposed" note: keep the place in the grid
      document.addEventListener("htmx:afterSettle", function keep() {
        document.removeEventListener("htmx:afterSettle", keep);
        card.focus();
      });
    } else { return; }
    event.preventDefault();
  });
})();
