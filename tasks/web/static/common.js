// Shared by every dashboard page (window.TQ): building DOM from task data with
// textContent only (never markup), POSTs with the dashboard header, formatting.
(function () {
  "use strict";

  var TERMINAL = { succeeded: true, failed: true, cancelled: true };

  // An element with a class and text; text always goes in as text, never as HTML.
  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function post(url, body) {
    var init = {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-Tasks-Dashboard": "1", Accept: "application/json" },
    };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(url, init).then(function (response) {
      return response.json().then(
        function (data) { return { ok: response.ok, status: response.status, body: data }; },
        function () { return { ok: false, status: response.status, body: null }; }
      );
    });
  }

  function errorText(answer) {
    if (answer.body && answer.body.error) return answer.body.error.message;
    return "HTTP " + answer.status;
  }

  function getJson(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) {
          var failure = new Error("HTTP " + response.status);
          failure.status = response.status;
          throw failure;
        }
        return response.json();
      });
  }

  // Seconds for people: 850 ms, 12.3 s, 4 min 05 s, 2 h 03 min.
  function span(seconds) {
    if (seconds === null || seconds === undefined || isNaN(seconds)) return "";
    if (seconds < 0) return "-" + span(-seconds);
    if (seconds < 1) return Math.round(seconds * 1000) + " ms";
    if (seconds < 60) return seconds.toFixed(1) + " s";
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    if (seconds < 3600) return Math.floor(seconds / 60) + " min " + pad(Math.floor(seconds % 60)) + " s";
    return Math.floor(seconds / 3600) + " h " + pad(Math.floor((seconds % 3600) / 60)) + " min";
  }

  function seconds(iso) {
    return iso ? Date.parse(iso) / 1000 : null;
  }

  function percent(task) {
    if (task.state === "succeeded") return 100;
    var total = task.progress.total;
    if (!total || total <= 0) return 0;
    return Math.max(0, Math.min(100, (100 * task.progress.current) / total));
  }

  function setState(badge, state) {
    badge.textContent = state;
    badge.className = "state state-" + state;
  }

  function setCounts(counts) {
    document.querySelectorAll("#counts .count").forEach(function (link) {
      var n = counts[link.dataset.state];
      if (n !== undefined) link.querySelector(".n").textContent = String(n);
    });
  }

  window.TQ = {
    TERMINAL: TERMINAL,
    el: el,
    post: post,
    getJson: getJson,
    errorText: errorText,
    span: span,
    seconds: seconds,
    percent: percent,
    setState: setState,
    setCounts: setCounts,
    api: document.body.dataset.api,
    dashboard: document.body.dataset.dashboard,
  };
})();
