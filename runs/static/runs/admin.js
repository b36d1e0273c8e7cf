// Live "running for" times in the runs list: ticks once per second, no request to the server.
(function () {
  "use strict";
  function format(seconds) {
    var h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    if (h >= 48) { return Math.floor(h / 24) + " d " + (h % 24) + " h"; }
    if (h) { return h + " h " + String(m).padStart(2, "0") + " min"; }
    return m + " min " + String(s).padStart(2, "0") + " s";
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll(".run-live[data-started]").forEach(function (el) {
      var started = Date.parse(el.getAttribute("data-started"));
      if (!isNaN(started) && now >= started) { el.textContent = format(Math.floor((now - started) / 1000)); }
    });
  }
  document.addEventListener("DOMContentLoaded", function () { tick(); setInterval(tick, 1000); });
})();
