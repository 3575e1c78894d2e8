// Start the page.
showStatus();
startCharts();
startToolbar();
if ($("#steps")) {
  startSteps();
  startSearch();
}
window.tvizUpdate = liveUpdate;
document.body.dataset.ready = "yes";
