// Header status.
function showStatus() {
  var run = state.page.run;
  var now = liveStatus(run.status, run.lastData, run.quietAfter);
  var pill = $("#run-status");
  var detail = $("#status-detail");
  pill.textContent = now;
  pill.className = "status status-" + now;
  var ago = run.lastData ? fmtAgo(Date.now() / 1000 - run.lastData) + " ago" : "unknown";
  if (now === "quiet") {
    detail.textContent = "Still marked running, but no data has arrived for " + ago.replace(" ago", "") +
      " (last data " + fmtLocal(run.lastData) + "): the training process may have stopped.";
  } else if (now === "running") {
    detail.textContent = "Running: last data " + ago + " (" + fmtLocal(run.lastData) + ").";
  } else {
    detail.textContent = now.charAt(0).toUpperCase() + now.slice(1) + " " + fmtLocal(run.ended || run.lastData) + ".";
  }
}
