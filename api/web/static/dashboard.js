// Draws the dashboard's charts from the data the page carries (the same numbers as its tables,
// which stay readable without JavaScript).
(function () {
  var el = document.getElementById("chart-data");
  if (!el || !window.Chart) { return; }
  var data = JSON.parse(el.textContent);
  window.usageChart = new Chart(document.getElementById("usage-chart"), {
    type: "line",
    data: { labels: data.labels, datasets: [{ label: "uses", data: data.uses, borderColor: "#1d70b8", pointRadius: 0 }] },
    options: { animation: false, plugins: { legend: { display: false } } }
  });
  window.profileChart = new Chart(document.getElementById("profile-chart"), {
    type: "bar",
    data: { labels: data.hours, datasets: [{ label: "share of uses", data: data.shares, backgroundColor: "#00703c" }] },
    options: { animation: false, plugins: { legend: { display: false } } }
  });
})();
