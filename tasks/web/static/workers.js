// The workers page: GET <api>/workers every few seconds (the worker registry).
// Answers {"workers": [{id, host, pid, version, queues, concurrency, started_at,
// heartbeat_at, running: [task ids], status: "alive"|"lost"}]}; a 404 means this
// deployment has no registry, which the page says instead of a table.
(function () {
  "use strict";

  var TQ = window.TQ;
  var table = document.getElementById("workers");
  var body = table.querySelector("tbody");
  var status = document.querySelector(".workers-status");
  var REFRESH_MS = 5000;

  function message(text, className) {
    body.replaceChildren();
    var row = TQ.el("tr", className);
    var td = TQ.el("td", "empty", text);
    td.colSpan = 10;
    row.appendChild(td);
    body.appendChild(row);
  }

  function render(workers) {
    var now = Date.now() / 1000;
    body.replaceChildren();
    if (!workers.length) {
      message("No worker process is registered.", "none");
      return;
    }
    workers.forEach(function (worker) {
      var row = TQ.el("tr", "worker worker-" + worker.status);
      row.dataset.workerId = worker.id;
      var badge = TQ.el("td");
      badge.appendChild(TQ.el("span", "state state-" + (worker.status === "alive" ? "succeeded" : "failed"), worker.status));
      var running = TQ.el("td", "num running");
      running.title = worker.running.join("\n");
      running.textContent = String(worker.running.length);
      var cells = [
        badge,
        TQ.el("td", "host", worker.host),
        TQ.el("td", "num", worker.pid),
        TQ.el("td", "queues", worker.queues.join(", ")),
        running,
        TQ.el("td", "num", worker.concurrency),
        TQ.el("td", "up", TQ.span(now - TQ.seconds(worker.started_at))),
        TQ.el("td", "heartbeat", TQ.span(now - TQ.seconds(worker.heartbeat_at)) + " ago"),
        TQ.el("td", "version", worker.version),
        TQ.el("td", "id"),
      ];
      cells[cells.length - 1].appendChild(TQ.el("code", null, worker.id));
      cells.forEach(function (td) { row.appendChild(td); });
      body.appendChild(row);
    });
  }

  function refresh() {
    TQ.getJson(table.dataset.url)
      .then(function (answer) {
        render(answer.workers);
        status.textContent = "updated " + new Date().toLocaleTimeString();
        window.setTimeout(refresh, REFRESH_MS);
      })
      .catch(function (error) {
        if (error.status === 404) {
          message("Worker registry not available: this server has no GET /tasks/workers.", "unavailable");
          status.textContent = "";
          return; // nothing to poll
        }
        status.textContent = "could not load workers: " + error.message;
        window.setTimeout(refresh, REFRESH_MS);
      });
  }

  refresh();
})();
