// One workflow's page: a single EventSource (GET .../dashboard/workflow/<id>/events)
// updates every step's row, the workflow's state and its counts, and is closed once
// the workflow is done. Task text goes in with textContent only, never as markup.
(function () {
  "use strict";

  var TQ = window.TQ;
  var article = document.getElementById("workflow");
  var body = article.querySelector("#steps tbody");
  var status = article.querySelector(".live-status");
  var note = article.querySelector(".action-message");
  var cancel = article.querySelector("button.cancel");
  var source = null;

  function rowOf(id) {
    return body.querySelector('tr[data-task-id="' + id + '"]');
  }

  // Same text as the server renders (tasks_workflow.html).
  function messageOf(step) {
    if (step.error && (step.state === "failed" || step.state === "cancelled")) {
      return step.error.type + ": " + step.error.message;
    }
    return step.progress.message || "";
  }

  function timing(row, now) {
    var started = TQ.seconds(row.dataset.startedAt);
    var finished = TQ.seconds(row.dataset.finishedAt);
    var text = "";
    if (started !== null && finished !== null) text = TQ.span(finished - started);
    else if (started !== null && !TQ.TERMINAL[row.dataset.state]) text = TQ.span(now - started);
    row.querySelector(".duration").textContent = text;
  }

  function renderStep(step) {
    var row = rowOf(step.id);
    // A reply older than what the row shows (the cancel POST overtaken by the stream).
    if (!row || Number(step.version) < Number(row.dataset.version || 0)) return;
    row.dataset.version = step.version;
    row.dataset.state = step.state;
    TQ.setState(row.querySelector(".state"), step.state);
    var p = TQ.percent(step);
    row.querySelector("progress").value = p;
    row.querySelector(".percent").textContent = Math.round(p) + "%";
    var message = row.querySelector(".message");
    message.textContent = message.title = messageOf(step);
    row.querySelector(".attempts").textContent = step.attempts + "/" + step.max_attempts;
    row.dataset.startedAt = step.started_at || "";
    row.dataset.finishedAt = step.finished_at || "";
    timing(row, Date.now() / 1000);
  }

  function renderWorkflow(workflow) {
    article.dataset.state = workflow.state;
    article.dataset.done = workflow.done ? "true" : "false";
    TQ.setState(article.querySelector(".workflow-head .state"), workflow.state);
    Object.keys(workflow.counts).forEach(function (state) {
      var count = article.querySelector('.wf-count[data-state="' + state + '"]');
      if (!count) return;
      count.querySelector(".n").textContent = String(workflow.counts[state]);
      count.hidden = !workflow.counts[state];
    });
    cancel.disabled = workflow.done;
    if (workflow.done) {
      article.querySelector(".workflow-outcome").textContent =
        "Workflow " + workflow.state + ": every step has finished.";
      status.textContent = "finished";
      if (source) source.close();
    }
  }

  function removeStep(id) {
    var row = rowOf(id);
    if (row) row.remove();
    article.querySelector(".step-total").textContent = String(body.rows.length);
  }

  function connect() {
    source = new EventSource(article.dataset.eventsUrl);
    source.addEventListener("open", function () { status.textContent = "live"; });
    source.addEventListener("step", function (event) { renderStep(JSON.parse(event.data)); });
    source.addEventListener("removed", function (event) { removeStep(JSON.parse(event.data).id); });
    source.addEventListener("workflow", function (event) { renderWorkflow(JSON.parse(event.data)); });
    source.onerror = function () {
      // EventSource reconnects by itself (and gets every step again), unless the
      // server refused it (the workflow was deleted): then it stays closed.
      status.textContent = source.readyState === EventSource.CLOSED ? "offline" : "reconnecting…";
    };
  }

  cancel.addEventListener("click", function () {
    cancel.disabled = true;
    TQ.post(article.dataset.cancelUrl)
      .then(function (answer) {
        if (!answer.ok) {
          cancel.disabled = article.dataset.done === "true";
          note.textContent = TQ.errorText(answer);
          return;
        }
        note.textContent = "Cancelled " + answer.body.cancelled + " unfinished step(s).";
        answer.body.workflow.steps.forEach(renderStep);
        renderWorkflow(answer.body.workflow);
      })
      .catch(function (error) {
        cancel.disabled = article.dataset.done === "true";
        note.textContent = String(error);
      });
  });

  window.setInterval(function () {
    var now = Date.now() / 1000;
    body.querySelectorAll("tr[data-task-id]").forEach(function (row) { timing(row, now); });
  }, 1000);
  body.querySelectorAll("tr[data-task-id]").forEach(function (row) { timing(row, Date.now() / 1000); });
  if (article.dataset.done !== "true") connect();
})();
