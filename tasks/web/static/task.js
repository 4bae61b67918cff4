// One task's page: follows the task's own event stream (state, progress,
// attempts) and reloads once when it finishes, so that the result or the
// error with its traceback is shown as the server renders it (escaped).
(function () {
  "use strict";

  var TQ = window.TQ;
  var article = document.getElementById("task");
  var startedDone = !!TQ.TERMINAL[article.dataset.state];
  var note = article.querySelector(".action-message");

  function setButtons(state) {
    article.querySelector("button.cancel").disabled = !!TQ.TERMINAL[state];
    article.querySelector("button.retry").disabled = !(state === "failed" || state === "cancelled");
  }

  function render(task) {
    article.dataset.state = task.state;
    TQ.setState(article.querySelector(".task-head .state"), task.state);
    var p = TQ.percent(task);
    article.querySelector("progress").value = p;
    article.querySelector(".percent").textContent = Math.round(p) + "%";
    article.querySelector(".message").textContent = task.progress.message || "";
    var numbers = task.progress.total ? task.progress.current + " of " + task.progress.total : "";
    article.querySelector(".progress-numbers").textContent = numbers;
    article.querySelector(".attempts").textContent = task.attempts + "/" + task.max_attempts;
    setButtons(task.state);
  }

  function follow() {
    if (startedDone) return;
    var source = new EventSource(article.dataset.eventsUrl);
    source.addEventListener("task", function (event) {
      var task = JSON.parse(event.data);
      render(task);
      if (TQ.TERMINAL[task.state]) {
        source.close();
        window.location.reload();
      }
    });
  }

  function act(url) {
    article.querySelectorAll(".actions button").forEach(function (b) { b.disabled = true; });
    TQ.post(url)
      .then(function (answer) {
        if (answer.ok) {
          window.location.reload();
        } else {
          setButtons(article.dataset.state);
          note.textContent = TQ.errorText(answer);
        }
      })
      .catch(function (error) {
        setButtons(article.dataset.state);
        note.textContent = String(error);
      });
  }

  article.querySelector("button.cancel").addEventListener("click", function () {
    act(article.dataset.cancelUrl);
  });
  article.querySelector("button.retry").addEventListener("click", function () {
    act(article.dataset.retryUrl);
  });
  follow();
})();
