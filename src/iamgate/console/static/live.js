// iamgate console: the live screens (console/live.py). No inline script, no eval; every value
// from the gateway is put into the page with textContent, never as HTML.
(function () {
  "use strict";
  var KINDS = ["allow", "explicit-deny", "implicit-deny", "throttled", "5xx"];
  var LABELS = {
    "allow": "Allow", "explicit-deny": "Explicit deny", "implicit-deny": "Implicit deny",
    "throttled": "Throttled", "5xx": "5xx", "other": "Other"
  };
  var COLOURS = ["#1a7f37", "#a40e26", "#d1242f", "#9a6700", "#6e40c9"];
  var MAX_ROWS = 500;

  function cell(row, text) {
    var td = document.createElement("td");
    td.textContent = text;
    row.appendChild(td);
    return td;
  }

  function clock(seconds) {
    var d = new Date(seconds * 1000);
    return d.toISOString().slice(11, 23);
  }

  function setText(id, value) {
    var el = document.getElementById(id);
    if (el) { el.textContent = String(value); }
  }

  function decisions(table) {
    var body = table.tBodies[0];
    var source = new EventSource(table.getAttribute("data-stream"));
    source.addEventListener("open", function () { setText("live-state", "Live"); });
    source.addEventListener("error", function () { setText("live-state", "Reconnecting…"); });
    source.addEventListener("end", function () {
      source.close();
      setText("live-state", "Signed out: reload the page to sign in again");
    });
    source.addEventListener("stats", function (message) {
      var s = JSON.parse(message.data);
      setText("dropped", s.dropped);
      setText("dropped-all", s.droppedAll);
      setText("missed", s.missed);
    });
    source.addEventListener("decision", function (message) {
      var e = JSON.parse(message.data);
      var row = document.createElement("tr");
      row.className = "kind-" + e.decision;
      row.setAttribute("data-id", e.id);
      cell(row, clock(e.time));
      cell(row, e.method);
      var path = cell(row, "");
      var link = document.createElement("a");
      link.href = "/console/decisions/" + encodeURIComponent(e.id);
      link.textContent = e.path;
      path.appendChild(link);
      cell(row, e.caller);
      cell(row, e.source);
      cell(row, String(e.status));
      cell(row, LABELS[e.decision] || e.decision);
      cell(row, e.api || "—");
      body.insertBefore(row, body.firstChild);
      while (body.rows.length > MAX_ROWS) { body.deleteRow(body.rows.length - 1); }
    });
  }

  function rates(box) {
    var url = box.getAttribute("data-rates");
    var size = 120;
    var data = [[]];
    KINDS.forEach(function () { data.push([]); });
    var series = [{}];
    KINDS.forEach(function (k, i) {
      series.push({ label: LABELS[k], stroke: COLOURS[i], width: 2 });
    });
    var width = Math.max(300, box.clientWidth || 600);
    var plot = new uPlot({ width: width, height: 280, series: series, scales: { x: { time: true } } }, data, box);
    box.iamgatePlot = plot;  // for tests: the chart's data
    var last = null;
    function tick() {
      fetch(url, { credentials: "same-origin", cache: "no-store" }).then(function (r) {
        if (!r.ok) { throw new Error("rates: " + r.status); }
        return r.json();
      }).then(function (now) {
        if (last !== null) {
          var seconds = Math.max(0.001, now.time - last.time);
          data[0].push(now.time);
          var line = [];
          KINDS.forEach(function (k, i) {
            var rate = Math.max(0, (now.totals[k] - last.totals[k]) / seconds);
            data[i + 1].push(Math.round(rate * 10) / 10);
            line.push(LABELS[k] + " " + data[i + 1][data[i + 1].length - 1]);
          });
          if (data[0].length > size) { data.forEach(function (col) { col.shift(); }); }
          plot.setData(data);
          setText("rates-now", line.join(" · ") + " requests/s");
          box.setAttribute("data-points", String(data[0].length));
        }
        last = now;
      }).catch(function () { setText("rates-now", "The rates could not be read."); });
    }
    tick();
    setInterval(tick, 1000);
  }

  function start() {
    var table = document.getElementById("decisions");
    if (table && table.getAttribute("data-stream")) { decisions(table); }
    var box = document.getElementById("rates");
    if (box && typeof uPlot !== "undefined") { rates(box); }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
