/* flask-jobs dashboard: the colour theme toggle and the copy buttons. No build, no library. */
(function () {
  "use strict";
  var KEY = "flask_jobs_theme";
  var ORDER = ["auto", "light", "dark"];

  function stored() {
    try { return localStorage.getItem(KEY) || "auto"; } catch (e) { return "auto"; }
  }

  function apply(theme) {
    var root = document.documentElement;
    if (theme === "light" || theme === "dark") root.dataset.theme = theme;
    else delete root.dataset.theme;
    var button = document.getElementById("fj-theme");
    if (button) button.querySelector("span").textContent = theme;
  }

  document.addEventListener("click", function (event) {
    var target = event.target.closest ? event.target.closest("#fj-theme, .fj-copy") : null;
    if (!target) return;
    if (target.id === "fj-theme") {
      var next = ORDER[(ORDER.indexOf(stored()) + 1) % ORDER.length];
      try { localStorage.setItem(KEY, next); } catch (e) { /* private mode: this page only */ }
      apply(next);
      return;
    }
    var text = target.getAttribute("data-copy") || "";
    var done = function () {
      target.classList.add("fj-copied");
      setTimeout(function () { target.classList.remove("fj-copied"); }, 1200);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () {});
    } else {  // plain http: the old way
      var area = document.createElement("textarea");
      area.value = text;
      document.body.appendChild(area);
      area.select();
      try { document.execCommand("copy"); done(); } catch (e) { /* nothing to copy with */ }
      area.remove();
    }
  });

  document.addEventListener("DOMContentLoaded", function () { apply(stored()); });
})();
