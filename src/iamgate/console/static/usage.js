// The usage screen's charts: requests per API key per day, one uPlot chart per usage plan.
// The data is the page's own JSON (script#usage-data); nothing is fetched. Text from the data
// (key ids) goes into the chart as series labels, which uPlot sets with textContent.
(function () {
  "use strict";
  function draw() {
    var holder = document.getElementById("usage-data");
    if (!holder || typeof uPlot === "undefined") { return; }
    var data = JSON.parse(holder.textContent || "{}");
    var palette = ["#0550ae", "#0a6b2d", "#8a4600", "#6f42c1", "#a40e26", "#1b7c83"];
    document.querySelectorAll(".chart[data-plan]").forEach(function (el) {
      var plan = data[el.getAttribute("data-plan")];
      if (!plan || !plan.series.length) { return; }
      var xs = plan.days.map(function (d) { return Date.parse(d + "T00:00:00Z") / 1000; });
      var series = [{}];
      var columns = [xs];
      plan.series.forEach(function (s, i) {
        series.push({ label: s[0], stroke: palette[i % palette.length], width: 2, points: { show: true } });
        columns.push(s[1]);
      });
      var width = Math.max(320, Math.min(el.clientWidth || 720, 960));
      var chart = new uPlot({ width: width, height: 220, series: series, axes: [{}, { label: "requests" }],
        scales: { x: { time: true } } }, columns, el);
      el.setAttribute("data-drawn", String(plan.series.length));
      el.uplot = chart;
    });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", draw); } else { draw(); }
})();
