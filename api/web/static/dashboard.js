// Draws the analysts' charts from the data the page carries (the same numbers as its tables,
// which stay readable without JavaScript).
(function () {
  var el = document.getElementById("chart-data");
  if (!el || !window.Chart) { return; }
  var data = JSON.parse(el.textContent);
  // taller on a phone, so the lines and bars stay readable
  var base = { animation: false, maintainAspectRatio: true,
               aspectRatio: window.innerWidth < 641 ? 1.3 : 2.5,
               plugins: { legend: { display: false } } };
  var usage = document.getElementById("usage-chart");
  if (usage) {
    var sets = [{ label: "Uses", data: data.uses, borderColor: "#1d70b8", backgroundColor: "#1d70b8", pointRadius: 0 }];
    if (data.median) {
      sets.push({ label: "Median household of cohort " + data.cohort, data: data.median,
                  borderColor: "#505a5f", backgroundColor: "#505a5f", borderDash: [6, 4], pointRadius: 0 });
    }
    window.usageChart = new Chart(usage, {
      type: "line",
      data: { labels: data.labels, datasets: sets },
      options: Object.assign({}, base, {
        plugins: { legend: { display: !!data.median, position: "bottom" } } })
    });
  }
  var profile = document.getElementById("profile-chart");
  if (profile) {
    window.profileChart = new Chart(profile, {
      type: "bar",
      data: { labels: data.hours, datasets: [{ label: "Share of uses (%)", data: data.shares, backgroundColor: "#00703c" }] },
      options: base
    });
  }
})();
