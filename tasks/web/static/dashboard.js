// The task list: one EventSource for the whole page (GET .../dashboard/events)
// updates every row, adds new tasks at the top (top page only) and refreshes the
// counts. Rows are built and changed with textContent only. Events carry task
// summaries: args and result as excerpts {bytes, preview, truncated}.
(function () {
  "use strict";

  var TQ = window.TQ;
  var table = document.getElementById("tasks");
  var body = table.querySelector("tbody");
  var status = document.querySelector(".live-status");
  var MAX_ROWS = 200; // the stream follows at most this many tasks
  var source = null;

  function rows() {
    return body.querySelectorAll("tr[data-task-id]");
  }

  function rowOf(id) {
    return body.querySelector('tr[data-task-id="' + id + '"]');
  }

  // Same text as the server's excerpt_text (tasks/web/dashboard.py).
  function excerptText(excerpt) {
    if (!excerpt) return "";
    if (!excerpt.truncated) return excerpt.preview;
    return excerpt.preview + "\u2026 (" + excerpt.bytes + " bytes)";
  }

  function render(row, task) {
    // An answer older than what the row shows (a POST's reply overtaken by the
    // stream) must not put an earlier state back: keep the row, fix its buttons.
    if (Number(task.version) < Number(row.dataset.version || 0)) {
      setButtons(row, row.dataset.state);
      return;
    }
    row.dataset.version = task.version;
    row.dataset.state = task.state;
    TQ.setState(row.querySelector(".state"), task.state);
    var p = TQ.percent(task);
    row.querySelector("progress").value = p;
    row.querySelector(".percent").textContent = Math.round(p) + "%";
    var message = task.state === "failed" && task.error ? task.error.message : task.progress.message;
    row.querySelector(".message").textContent = message || "";
    row.querySelector(".attempts").textContent = task.attempts + "/" + task.max_attempts;
    row.dataset.runAt = task.run_at || "";
    row.dataset.startedAt = task.started_at || "";
    row.dataset.finishedAt = task.finished_at || "";
    setButtons(row, task.state);
    timing(row, Date.now() / 1000);
  }

  function renderSummary(row, summary) {
    render(row, summary);
    row.querySelector(".args code").textContent = excerptText(summary.args);
    row.querySelector(".result code").textContent = excerptText(summary.result);
  }

  function setButtons(row, state) {
    row.querySelector("button.cancel").disabled = !!TQ.TERMINAL[state];
    row.querySelector("button.retry").disabled = !(state === "failed" || state === "cancelled");
  }

  // Duration column and the "delayed" mark, from the row's timestamps.
  function timing(row, now) {
    var started = TQ.seconds(row.dataset.startedAt);
    var finished = TQ.seconds(row.dataset.finishedAt);
    var runAt = TQ.seconds(row.dataset.runAt);
    var text = "";
    if (started !== null && finished !== null) text = TQ.span(finished - started);
    else if (started !== null && row.dataset.state !== "queued") text = TQ.span(now - started);
    row.querySelector(".duration").textContent = text;
    var delayed = row.dataset.state === "queued" && runAt !== null && runAt > now;
    var mark = row.querySelector(".delayed");
    mark.textContent = delayed ? "in " + TQ.span(runAt - now) : "";
    mark.title = delayed ? "delayed until " + row.dataset.runAt : "";
  }

  function cell(className, text) {
    var td = TQ.el("td", className);
    if (text !== undefined) td.textContent = text;
    return td;
  }

  function newRow(task) {
    var row = TQ.el("tr");
    row.dataset.taskId = task.id;
    row.dataset.createdAt = task.created_at;
    row.dataset.cancelUrl = task.url + "/cancel";
    row.dataset.retryUrl = task.url + "/retry";
    var link = TQ.el("a");
    link.href = TQ.dashboard + "/task/" + encodeURIComponent(task.id);
    link.appendChild(TQ.el("code", null, task.id.slice(0, 12)));
    var id = cell("id");
    id.appendChild(link);
    var state = cell();
    state.appendChild(TQ.el("span", "state"));
    state.appendChild(TQ.el("span", "delayed"));
    var progress = cell("progress");
    var bar = TQ.el("progress");
    bar.max = 100;
    progress.appendChild(bar);
    progress.appendChild(TQ.el("span", "percent"));
    progress.appendChild(TQ.el("span", "message"));
    var args = cell("payload args wide");
    args.appendChild(TQ.el("code"));
    var result = cell("payload result wide");
    result.appendChild(TQ.el("code"));
    var created = cell("created", (task.created_at || "").slice(11, 19));
    created.title = task.created_at;
    var actions = cell("actions");
    var cancel = TQ.el("button", "cancel", "Cancel");
    var retry = TQ.el("button", "retry", "Retry");
    cancel.type = retry.type = "button";
    actions.appendChild(cancel);
    actions.appendChild(document.createTextNode(" "));
    actions.appendChild(retry);
    [id, cell("name", task.name), cell("queue", task.queue), state, progress,
      cell("attempts num"), args, result, created, cell("duration num"), actions]
      .forEach(function (td) { row.appendChild(td); });
    renderSummary(row, task);
    return row;
  }

  function insertNew(task) {
    if (rowOf(task.id)) return;
    var row = newRow(task);
    row.classList.add("fresh");
    // Ids grow with time: keep the table newest first.
    var before = null;
    rows().forEach(function (other) {
      if (!before && other.dataset.taskId < task.id) before = other;
    });
    body.insertBefore(row, before || body.querySelector(".empty-row"));
    body.querySelector(".empty-row").hidden = true;
    var all = rows();
    for (var i = all.length - 1; i >= MAX_ROWS; i--) all[i].remove();
    table.dataset.liveAfter = rows()[0].dataset.taskId;
  }

  function streamUrl() {
    var ids = [];
    rows().forEach(function (row) { ids.push(row.dataset.taskId); });
    var params = new URLSearchParams();
    params.set("ids", ids.slice(0, MAX_ROWS).join(","));
    if (table.dataset.liveAfter) {
      params.set("after", table.dataset.liveAfter);
      ["state", "name", "queue"].forEach(function (key) {
        var value = table.dataset["filter" + key[0].toUpperCase() + key.slice(1)];
        if (value) params.set(key, value);
      });
    }
    return table.dataset.eventsUrl + "?" + params.toString();
  }

  function connect() {
    source = new EventSource(streamUrl());
    source.addEventListener("open", function () { status.textContent = "live"; });
    source.addEventListener("task", function (event) {
      var task = JSON.parse(event.data);
      var row = rowOf(task.id);
      if (row) renderSummary(row, task);
    });
    source.addEventListener("new", function (event) {
      insertNew(JSON.parse(event.data));
    });
    source.addEventListener("counts", function (event) {
      TQ.setCounts(JSON.parse(event.data));
    });
    source.onerror = function () {
      // Reconnect with the rows shown now (new ones included); the server then
      // sends every row's current state again.
      status.textContent = "reconnecting…";
      source.close();
      window.setTimeout(connect, 1000);
    };
  }

  function act(row, url) {
    var buttons = row.querySelectorAll("button");
    buttons.forEach(function (b) { b.disabled = true; });
    TQ.post(url)
      .then(function (answer) {
        if (answer.ok) {
          render(row, answer.body); // the full task: its state, not its payloads
        } else {
          setButtons(row, row.dataset.state);
          row.querySelector(".message").textContent = TQ.errorText(answer);
        }
      })
      .catch(function (error) {
        setButtons(row, row.dataset.state);
        row.querySelector(".message").textContent = String(error);
      });
  }

  body.addEventListener("click", function (event) {
    var button = event.target.closest("button");
    var row = button && button.closest("tr[data-task-id]");
    if (!row) return;
    if (button.classList.contains("cancel")) act(row, row.dataset.cancelUrl);
    if (button.classList.contains("retry")) act(row, row.dataset.retryUrl);
  });

  // Bulk actions, each behind a confirmation dialog.
  function confirmDialog(dialog, run) {
    var outcome = dialog.querySelector(".outcome");
    var ok = dialog.querySelector(".confirm-ok");
    outcome.textContent = "";
    ok.disabled = false;
    dialog.showModal();
    ok.onclick = function (event) {
      event.preventDefault();
      ok.disabled = true;
      outcome.textContent = "Working…";
      run()
        .then(function (answer) {
          outcome.textContent = answer;
        })
        .catch(function (error) {
          ok.disabled = false;
          outcome.textContent = String(error.message || error);
        });
    };
  }

  function bulk(url, body, describe) {
    return TQ.post(url, body).then(function (answer) {
      if (!answer.ok) throw new Error(TQ.errorText(answer));
      return describe(answer.body);
    });
  }

  document.getElementById("retry-failed").addEventListener("click", function () {
    var request = {};
    if (table.dataset.filterName) request.name = table.dataset.filterName;
    confirmDialog(document.getElementById("confirm-retry"), function () {
      return bulk(TQ.api + "/bulk/retry-failed", request, function (answer) {
        return "Queued " + answer.retried + " failed task(s) again" + (answer.more ? " (more remain)." : ".");
      });
    });
  });

  document.getElementById("purge").addEventListener("click", function () {
    var dialog = document.getElementById("confirm-purge");
    confirmDialog(dialog, function () {
      var states = [];
      dialog.querySelectorAll('input[name="states"]:checked').forEach(function (box) {
        states.push(box.value);
      });
      var olderThan = Number(dialog.querySelector('select[name="older_than"]').value);
      return bulk(TQ.api + "/bulk/purge", { states: states, older_than: olderThan }, function (answer) {
        return "Deleted " + answer.deleted + " task(s).";
      });
    });
  });

  window.setInterval(function () {
    var now = Date.now() / 1000;
    rows().forEach(function (row) { timing(row, now); });
  }, 1000);
  rows().forEach(function (row) { timing(row, Date.now() / 1000); });
  connect();
})();
