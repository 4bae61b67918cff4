// Keeps the dashboard table live: one EventSource per unfinished task (a few
// at a time, so the browser keeps connections free for the buttons), and
// cancel/retry buttons that POST to the API. Events carry task summaries:
// args and result arrive as excerpts {bytes, preview, truncated}; the full
// task is at its link.
(function () {
  "use strict";

  var TERMINAL = { succeeded: true, failed: true, cancelled: true };
  var MAX_STREAMS = 4;
  var streams = new Map();
  var waiting = [];

  function percent(task) {
    if (task.state === "succeeded") return 100;
    var total = task.progress.total;
    if (!total || total <= 0) return 0;
    return Math.max(0, Math.min(100, (100 * task.progress.current) / total));
  }

  function render(row, task) {
    row.dataset.state = task.state;
    var badge = row.querySelector(".state");
    badge.textContent = task.state;
    badge.className = "state state-" + task.state;
    var p = percent(task);
    row.querySelector("progress").value = p;
    row.querySelector(".percent").textContent = Math.round(p) + "%";
    var message = task.state === "failed" && task.error ? task.error.message : task.progress.message;
    row.querySelector(".message").textContent = message || "";
    row.querySelector(".attempts").textContent = task.attempts + "/" + task.max_attempts;
    setButtons(row, task.state);
  }

  // Same text as the server's excerpt_text (tasks/web/dashboard.py).
  function excerptText(excerpt) {
    if (!excerpt) return "";
    if (!excerpt.truncated) return excerpt.preview;
    return excerpt.preview + "\u2026 (" + excerpt.bytes + " bytes)";
  }

  function renderSummary(row, summary) {
    render(row, summary);
    row.querySelector(".result code").textContent = excerptText(summary.result);
  }

  function setButtons(row, state) {
    row.querySelector("button.cancel").disabled = !!TERMINAL[state];
    row.querySelector("button.retry").disabled = !(state === "failed" || state === "cancelled");
  }

  function watch(row) {
    var id = row.dataset.taskId;
    if (streams.has(id) || TERMINAL[row.dataset.state]) return;
    if (streams.size >= MAX_STREAMS) {
      if (waiting.indexOf(row) < 0) waiting.push(row);
      return;
    }
    var source = new EventSource(row.dataset.eventsUrl);
    streams.set(id, source);
    source.addEventListener("task", function (event) {
      var task = JSON.parse(event.data);
      renderSummary(row, task);
      if (TERMINAL[task.state]) unwatch(id);
    });
    source.onerror = function () {
      // The browser reconnects by itself (with Last-Event-ID) unless the
      // server refused the stream outright.
      if (source.readyState === EventSource.CLOSED) unwatch(id);
    };
  }

  function unwatch(id) {
    var source = streams.get(id);
    if (source) source.close();
    streams.delete(id);
    var next = waiting.shift();
    if (next) watch(next);
  }

  function act(row, url) {
    var buttons = row.querySelectorAll("button");
    buttons.forEach(function (b) { b.disabled = true; });
    fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-Tasks-Dashboard": "1", Accept: "application/json" },
    })
      .then(function (response) {
        return response.json().then(function (body) { return { ok: response.ok, body: body }; });
      })
      .then(function (answer) {
        if (answer.ok) {
          render(row, answer.body); // the full task: its state, not its payloads
          watch(row);
        } else {
          setButtons(row, row.dataset.state);
          row.querySelector(".message").textContent = answer.body.error.message;
        }
      })
      .catch(function (error) {
        setButtons(row, row.dataset.state);
        row.querySelector(".message").textContent = String(error);
      });
  }

  document.querySelectorAll("tr[data-task-id]").forEach(function (row) {
    row.querySelector("button.cancel").addEventListener("click", function () {
      act(row, row.dataset.cancelUrl);
    });
    row.querySelector("button.retry").addEventListener("click", function () {
      act(row, row.dataset.retryUrl);
    });
    watch(row);
  });
})();
