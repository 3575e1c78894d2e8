// Start the page.
showStatus();
startCharts();
startPanels();
startToolbar();
if ($("#steps")) {
  startSteps();
  startSearch();
  startTable();
}
window.tvizUpdate = liveUpdate;
document.body.dataset.ready = "yes";
