// Live "running for" times in the runs list: ticks once per second, no request to the server.
// It counts on the database's clock (#run-listed-at, when the rows were read), not the
// browser's, which may be minutes off: the same durations as the monitor's.
// The words are the page's: the server writes its duration formats (runs/durations.py,
// translated) into #run-duration-formats, and this file only fills in the numbers.
// Also: choosing a project in the project filter's search box (the admin's select2
// autocomplete) opens the list filtered to it, the other filters kept.
(function () {
  "use strict";
  function fill(pattern, values) {
    // Python's %-formatting, as far as the patterns use it: %(name)d, %(name)02d and %%.
    return pattern.replace(/%\((\w+)\)(0?)(\d*)d|%%/g, function (match, name, zero, width) {
      if (match === "%%") { return "%"; }
      return String(values[name]).padStart(Number(width || 0), zero ? "0" : " ");
    });
  }
  function format(seconds, formats) {
    for (var i = 0; i < formats.length; i++) {
      if (seconds >= formats[i].from) {
        var values = {}, rest = seconds;
        formats[i].fields.forEach(function (field) {
          values[field[0]] = Math.floor(rest / field[1]);
          rest = rest % field[1];
        });
        return fill(formats[i].pattern, values);
      }
    }
    return null;
  }
  function tick(formats, offset) {
    var now = Date.now() + offset;
    document.querySelectorAll(".run-live[data-started]").forEach(function (el) {
      var started = Date.parse(el.getAttribute("data-started"));
      if (isNaN(started) || now < started) { return; }
      var text = format(Math.floor((now - started) / 1000), formats);
      if (text !== null) { el.textContent = text; }
    });
  }
  function projectSearch() {
    var form = document.getElementById("project-search-form");
    if (!form || !window.django || !window.django.jQuery) { return; }
    // select2 reports a choice through jQuery's events only.
    window.django.jQuery(form).find("select").on("change", function () {
      if (!this.value) { this.disabled = true; }  // cleared: all projects, no empty parameter
      form.submit();
    });
  }
  document.addEventListener("DOMContentLoaded", projectSearch);
  document.addEventListener("DOMContentLoaded", function () {
    var source = document.getElementById("run-duration-formats");
    var formats = source && JSON.parse(source.textContent);
    if (!formats) { return; }  // without the page's words, the server's text stays
    var listed = document.getElementById("run-listed-at");
    var offset = listed ? Date.parse(JSON.parse(listed.textContent)) - Date.now() : 0;
    if (isNaN(offset)) { offset = 0; }
    tick(formats, offset);
    setInterval(function () { tick(formats, offset); }, 1000);
  });
})();
