// Overview charts: reads the JSON block the page carries (no inline script, CSP) and draws
// three Chart.js charts. Without Chart.js (assets not built) the page keeps its numbers.
(function () {
  "use strict";

  function money(minor) {
    return (minor / 100).toLocaleString(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  }

  function draw() {
    var source = document.getElementById("overview-data");
    if (!source || typeof window.Chart === "undefined") {
      return;
    }
    var data = JSON.parse(source.textContent);
    var m = data.metrics;
    var labels = data.labels.map(function (day) { return day.slice(5); }); // MM-DD
    var common = { responsive: true, maintainAspectRatio: false, animation: false,
      interaction: { mode: "index", intersect: false } };

    new window.Chart(document.getElementById("chart-volume"), {
      type: "line",
      data: { labels: labels, datasets: [
        { label: "Sent", data: m.sent, borderColor: "#2456d3", backgroundColor: "#2456d3" },
        { label: "Delivered", data: m.delivered, borderColor: "#177a3c", backgroundColor: "#177a3c" },
        { label: "Opened", data: m.opened, borderColor: "#9a6700", backgroundColor: "#9a6700" },
        { label: "Clicked", data: m.clicked, borderColor: "#7a3ccf", backgroundColor: "#7a3ccf" }
      ] },
      options: Object.assign({}, common, { scales: { y: { beginAtZero: true } } })
    });

    new window.Chart(document.getElementById("chart-revenue"), {
      type: "bar",
      data: { labels: labels, datasets: [
        { label: "Revenue", data: m.revenue_minor.map(function (v) { return v / 100; }), backgroundColor: "#177a3c" }
      ] },
      options: Object.assign({}, common, {
        scales: { y: { beginAtZero: true } },
        plugins: { tooltip: { callbacks: { label: function (ctx) { return "Revenue " + money(ctx.raw * 100); } } } }
      })
    });

    var limit = data.labels.map(function () { return data.complaint_limit; });
    new window.Chart(document.getElementById("chart-health"), {
      data: { labels: labels, datasets: [
        { type: "bar", label: "Bounces", data: m.bounced, backgroundColor: "#9a6700", yAxisID: "y" },
        { type: "bar", label: "Complaints", data: m.complained, backgroundColor: "#b42318", yAxisID: "y" },
        { type: "line", label: "Complaint rate %", data: data.complaint_rate, borderColor: "#1d2330", backgroundColor: "#1d2330", yAxisID: "rate" },
        { type: "line", label: "0.3 % limit (Gmail/Yahoo)", data: limit, borderColor: "#b42318", borderDash: [6, 4], pointRadius: 0, yAxisID: "rate" }
      ] },
      options: Object.assign({}, common, { scales: {
        y: { beginAtZero: true, position: "left", title: { display: true, text: "messages" } },
        rate: { beginAtZero: true, position: "right", suggestedMax: 0.5, grid: { drawOnChartArea: false },
          title: { display: true, text: "%" } }
      } })
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
