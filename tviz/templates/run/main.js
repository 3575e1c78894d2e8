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
startEvals();
window.tvizUpdate = liveUpdate;
document.body.dataset.ready = "yes";
