// The queues page: the queue table from GET <api>/queues every few seconds, and
// an inline SVG chart of GET <api>/activity (tasks finished per 10 s bucket as
// bars, failed ones stacked on top, and the mean start latency as a line on its
// own axis). Both endpoints read the store, so every server process draws the same.
(function () {
  "use strict";

  var TQ = window.TQ;
  var SVG = "http://www.w3.org/2000/svg";
  var table = document.getElementById("queues");
  var body = table.querySelector("tbody");
  var status = document.querySelector(".queues-status");
  var chart = document.getElementById("chart");
  var lastActivity = null;

  function renderQueues(queues) {
    body.replaceChildren();
    if (!queues.length) {
      var row = TQ.el("tr", "none");
      var td = TQ.el("td", "empty", "No queued, running or recently finished tasks.");
      td.colSpan = 6;
      row.appendChild(td);
      body.appendChild(row);
      return;
    }
    queues.forEach(function (queue) {
      var row = TQ.el("tr", "queue");
      row.dataset.queue = queue.queue;
      var name = TQ.el("td", "name");
      var link = TQ.el("a", null, queue.queue);
      link.href = TQ.dashboard + "?queue=" + encodeURIComponent(queue.queue);
      name.appendChild(link);
      var age = queue.oldest_queued_age;
      var ageCell = TQ.el("td", "num age", age === null ? "—" : TQ.span(age));
      if (age !== null && age > 60) ageCell.classList.add("late");
      [
        name,
        TQ.el("td", "num queued", queue.queued),
        TQ.el("td", "num running", queue.running),
        ageCell,
        TQ.el("td", "num throughput", queue.finished_last_minute),
        TQ.el("td", "next", queue.oldest_run_at ? queue.oldest_run_at.slice(0, 19).replace("T", " ") : ""),
      ].forEach(function (cell) { row.appendChild(cell); });
      body.appendChild(row);
    });
  }

  function svg(tag, attrs, text) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attrs).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    if (text !== undefined) node.textContent = String(text);
    return node;
  }

  // A round step of which four make at least ``value`` (whole numbers for counts).
  function niceStep(value, whole) {
    var raw = value / 4;
    if (raw <= 0) return whole ? 1 : 0.001;
    var scale = Math.pow(10, Math.floor(Math.log10(raw)));
    var steps = [1, 2, 2.5, 5, 10];
    for (var i = 0; i < steps.length; i++) {
      var step = steps[i] * scale;
      if (step >= raw && (!whole || step === Math.round(step))) return step;
    }
    return 10 * scale;
  }

  function latencyLabel(value, top) {
    if (top >= 1) return TQ.span(value) || "0 s";
    var ms = value * 1000;
    return ms.toFixed(top * 1000 < 10 ? 1 : 0) + " ms";
  }

  function drawChart(activity) {
    lastActivity = activity;
    var buckets = activity.buckets;
    var width = Math.max(chart.clientWidth, 320);
    var height = 220;
    var pad = { left: 44, right: 52, top: 12, bottom: 26 };
    var plotW = width - pad.left - pad.right;
    var plotH = height - pad.top - pad.bottom;
    var countStep = niceStep(Math.max.apply(null, buckets.map(function (b) { return b.finished; }).concat([0])), true);
    var maxCount = 4 * countStep;
    var latencies = buckets.map(function (b) { return b.latency_mean; }).filter(function (v) { return v !== null; });
    var maxLatency = 4 * niceStep(Math.max.apply(null, latencies.concat([0])), false);
    var root = svg("svg", { width: width, height: height, viewBox: "0 0 " + width + " " + height, role: "img" });
    root.appendChild(svg("title", {}, "Tasks finished per " + activity.bucket_seconds + " s and mean start latency"));
    for (var g = 0; g <= 4; g++) {
      var y = pad.top + plotH - (plotH * g) / 4;
      root.appendChild(svg("line", { x1: pad.left, x2: pad.left + plotW, y1: y, y2: y, class: "grid" }));
      root.appendChild(svg("text", { x: pad.left - 6, y: y + 4, class: "axis", "text-anchor": "end" }, countStep * g));
      root.appendChild(svg("text", { x: pad.left + plotW + 6, y: y + 4, class: "axis latency" }, latencyLabel((maxLatency * g) / 4, maxLatency)));
    }
    var slot = plotW / buckets.length;
    var barW = Math.max(1, slot - 1);
    var points = [];
    buckets.forEach(function (b, i) {
      var x = pad.left + i * slot;
      var okH = (plotH * (b.finished - b.failed)) / maxCount;
      var failH = (plotH * b.failed) / maxCount;
      if (okH > 0) root.appendChild(svg("rect", { x: x, y: pad.top + plotH - okH, width: barW, height: okH, class: "bar-ok" }));
      if (failH > 0) root.appendChild(svg("rect", { x: x, y: pad.top + plotH - okH - failH, width: barW, height: failH, class: "bar-failed" }));
      if (b.latency_mean !== null) points.push([x + barW / 2, pad.top + plotH - (plotH * b.latency_mean) / maxLatency]);
    });
    if (points.length > 1) {
      var path = points.map(function (p) { return p[0].toFixed(1) + "," + p[1].toFixed(1); });
      root.appendChild(svg("polyline", { points: path.join(" "), class: "latency-line" }));
    }
    points.forEach(function (p) {
      root.appendChild(svg("circle", { cx: p[0].toFixed(1), cy: p[1].toFixed(1), r: 2.5, class: "latency-dot" }));
    });
    var ticks = 5;
    for (var t = 0; t <= ticks; t++) {
      var index = Math.min(buckets.length - 1, Math.round(((buckets.length - 1) * t) / ticks));
      var label = new Date(buckets[index].start).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hour12: false });
      root.appendChild(svg("text", { x: pad.left + index * slot, y: height - 6, class: "axis", "text-anchor": "middle" }, label));
    }
    var total = buckets.reduce(function (sum, b) { return sum + b.finished; }, 0);
    chart.dataset.finished = String(total);
    chart.replaceChildren(root);
  }

  function refreshQueues() {
    TQ.getJson(table.dataset.url)
      .then(function (answer) {
        renderQueues(answer.queues);
        status.textContent = "updated " + new Date().toLocaleTimeString();
      })
      .catch(function (error) { status.textContent = "could not load queues: " + error.message; })
      .finally(function () { window.setTimeout(refreshQueues, 3000); });
  }

  function refreshChart() {
    TQ.getJson(chart.dataset.url + "?minutes=15&bucket=10")
      .then(drawChart)
      .catch(function (error) { chart.textContent = "could not load activity: " + error.message; })
      .finally(function () { window.setTimeout(refreshChart, 10000); });
  }

  window.addEventListener("resize", function () { if (lastActivity) drawChart(lastActivity); });
  refreshQueues();
  refreshChart();
})();
