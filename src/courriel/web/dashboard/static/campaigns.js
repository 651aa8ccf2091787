// Campaigns: draws the report's charts from the JSON block the page carries (CSP: no
// inline script). Cancel's confirmation is dashboard.js's data-confirm.
(function () {
  "use strict";
  function draw() {
    var block = document.getElementById("campaign-report-data");
    if (!block || typeof window.Chart === "undefined") { return; }
    var data = JSON.parse(block.textContent);
    var funnel = document.getElementById("funnel-chart");
    if (funnel) {
      new window.Chart(funnel, {
        type: "bar",
        data: { labels: data.funnel.labels, datasets: [{ label: "Contacts", data: data.funnel.values, backgroundColor: "#2456d3" }] },
        options: { maintainAspectRatio: false, animation: false, plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } }
      });
    }
    var variants = document.getElementById("variants-chart");
    if (variants) {
      new window.Chart(variants, {
        type: "bar",
        data: {
          labels: data.variants.labels,
          datasets: [
            { label: "Open rate %", data: data.variants.open_rate, backgroundColor: "#2456d3" },
            { label: "Click rate %", data: data.variants.click_rate, backgroundColor: "#177a3c" }
          ]
        },
        options: { maintainAspectRatio: false, animation: false, scales: { y: { beginAtZero: true } } }
      });
    }
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", draw); } else { draw(); }
})();
