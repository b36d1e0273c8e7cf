// Live refresh of the runs list and the stats page: no framework, no request the page would
// not make itself. Every few seconds (off by default; the choice is kept per browser and
// page) it fetches the page's own address, filters included, and swaps the regions named in
// #live-refresh's data-regions (the rows, actions bar and count; the stats) with the fresh
// ones, so nothing else on the page moves. It waits while rows are selected or a form is
// being filled, while the tab is hidden, and after a slow answer (the next refresh waits at
// least ten times as long as the last one took). Its words are the page's (data-* attributes).
(function () {
  "use strict";
  var STORAGE_PREFIX = "tenderops.refresh.";
  var SLOWDOWN = 10;
  var control, select, state, regions, key, timer = null, inFlight = false;
  var dueAt = 0, lastTook = 0, reinitListeners = [];

  function storage() {
    try { return window.localStorage; } catch (e) { return null; }
  }

  function intervalSeconds() { return Number(select.value) || 0; }

  function isChanged(el) {
    if (el.tagName === "SELECT") {
      var index = Array.prototype.findIndex.call(el.options, function (o) { return o.defaultSelected; });
      return el.selectedIndex !== (index < 0 ? 0 : index);
    }
    return el.value !== el.defaultValue;
  }

  function pausedReason() {
    var across = Array.prototype.some.call(
      document.querySelectorAll("input.select-across"), function (el) { return el.value === "1"; });
    if (across || document.querySelector("tr input.action-select:checked")) {
      return control.getAttribute("data-paused-selection");
    }
    var active = document.activeElement;
    if (active && active !== select && active.matches("input, textarea, select") &&
        active.type !== "checkbox" && active.type !== "submit") {
      return control.getAttribute("data-paused-form");
    }
    var fields = document.querySelectorAll(
      "input:not([type=hidden]):not([type=checkbox]):not([type=submit]), textarea, select");
    for (var i = 0; i < fields.length; i++) {
      if (fields[i] !== select && isChanged(fields[i])) {
        return control.getAttribute("data-paused-form");
      }
    }
    return null;
  }

  function show(text, isError) {
    state.textContent = text || "";
    state.classList.toggle("live-refresh-error", Boolean(isError));
  }

  // Django's actions.js binds the rows' checkboxes when the page loads; rows swapped in are
  // bound again, and the document-level listeners of the previous binding are removed.
  function rebindActions() {
    var boxes = document.querySelectorAll("tr input.action-select");
    if (!window.Actions || !boxes.length) { return; }
    reinitListeners.forEach(function (l) { l[0].removeEventListener(l[1], l[2], l[3]); });
    reinitListeners = [];
    var targets = [document, window], originals = targets.map(function (t) { return t.addEventListener; });
    targets.forEach(function (target) {
      target.addEventListener = function (type, fn, options) {
        reinitListeners.push([target, type, fn, options]);
        return originals[targets.indexOf(target)].call(target, type, fn, options);
      };
    });
    try { window.Actions(boxes); } finally {
      targets.forEach(function (target, i) { target.addEventListener = originals[i]; });
    }
  }

  function swap(doc) {
    var fresh = regions.map(function (id) { return [document.getElementById(id), doc.getElementById(id)]; });
    if (fresh.some(function (pair) { return !pair[0] || !pair[1]; })) { return false; }
    fresh.forEach(function (pair) { pair[0].innerHTML = pair[1].innerHTML; });
    rebindActions();
    return true;
  }

  function schedule(delayMs) {
    clearTimeout(timer);
    timer = null;
    if (!intervalSeconds()) { return; }
    dueAt = Date.now() + delayMs;
    timer = setTimeout(tick, delayMs);
  }

  function nextDelay() {
    return Math.max(intervalSeconds() * 1000, lastTook * SLOWDOWN);
  }

  function tick() {
    timer = null;
    if (!intervalSeconds() || inFlight) { return; }
    if (document.hidden) { return; }  // visibilitychange brings it back
    var reason = pausedReason();
    if (reason) { show(reason); schedule(1000); return; }
    show("");
    refresh();
  }

  function refresh() {
    inFlight = true;
    control.classList.add("is-refreshing");
    var started = Date.now();
    fetch(window.location.href, {
      credentials: "same-origin", cache: "no-store", headers: { "X-Requested-With": "tenderops-refresh" }
    }).then(function (response) {
      if (response.redirected && /\/login\/?$/.test(new URL(response.url).pathname)) {
        throw { signedOut: true };
      }
      if (!response.ok) { throw new Error(String(response.status)); }
      return response.text();
    }).then(function (html) {
      lastTook = Date.now() - started;
      var reason = pausedReason();  // selected or typed meanwhile: keep the page as it is
      if (reason) { show(reason); schedule(1000); return; }
      var doc = new DOMParser().parseFromString(html, "text/html");
      if (!swap(doc)) { throw new Error("regions"); }
      show("");
      schedule(nextDelay());
    }).catch(function (error) {
      if (error && error.signedOut) {
        show(control.getAttribute("data-signed-out"), true);
        return;  // no more requests until the operator logs in again
      }
      lastTook = Math.max(lastTook, Date.now() - started);
      show(control.getAttribute("data-failed"), true);
      schedule(nextDelay());
    }).finally(function () {
      inFlight = false;
      control.classList.remove("is-refreshing");
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    control = document.getElementById("live-refresh");
    if (!control || !window.fetch || !window.DOMParser) { return; }
    select = document.getElementById("live-refresh-interval");
    state = document.getElementById("live-refresh-state");
    regions = (control.getAttribute("data-regions") || "").split(/\s+/).filter(Boolean);
    key = STORAGE_PREFIX + (control.getAttribute("data-page") || "page");
    var saved = storage() && storage().getItem(key);
    if (saved && Array.prototype.some.call(select.options, function (o) { return o.value === saved; })) {
      select.value = saved;
    }
    select.addEventListener("change", function () {
      var store = storage();
      if (store) { store.setItem(key, select.value); }
      show("");
      schedule(intervalSeconds() * 1000);
    });
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden && intervalSeconds() && !inFlight) {
        schedule(Math.max(0, dueAt - Date.now()));
      }
    });
    schedule(intervalSeconds() * 1000);
  });
})();
