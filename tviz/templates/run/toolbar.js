// Toolbar: smoothing, log scale, replay.

function startToolbar() {
  var smoothing = $("#smoothing");
  smoothing.addEventListener("input", function () {
    state.smooth = Number(smoothing.value);
    $("#smoothing-value").textContent = state.smooth > 0 ? state.smooth.toFixed(2) : "off";
    refreshAll();
  });
  $("#logscale").addEventListener("change", function (e) {
    state.log = e.target.checked;
    redrawAll();
  });

  var replay = $("#replay"), steps = state.page.steps;
  replay.max = Math.max(0, steps.length - 1);
  replay.value = replay.max;
  if (steps.length < 2) replay.disabled = true;
  replay.addEventListener("input", function () { setReplay(replay.value); });
  $("#replay-latest").addEventListener("click", function (e) {
    e.preventDefault();
    replay.value = replay.max;
    setReplay(replay.max);
  });
}

function setReplay(index) {
  showReplay(index);
  cancelAnimationFrame(state.replayFrame);
  state.replayFrame = requestAnimationFrame(function () { refreshAll(); renderSteps(); });
}

function showReplay(index) {
  var steps = state.page.steps;
  index = Number(index);
  var latest = index >= steps.length - 1;
  state.upto = latest ? null : steps[index];
  $("#replay-value").textContent = latest ? "latest" : "step " + steps[index].toLocaleString("en-US");
  $("#replay-latest").hidden = latest;
  document.body.dataset.replay = latest ? "" : String(steps[index]);
  if (!latest && !state.replayBanner) {
    state.replayBanner = el("p", { class: "replay-banner", role: "status" });
    $("main").insertBefore(state.replayBanner, $("main").firstChild);
  }
  if (state.replayBanner) {
    if (latest) { state.replayBanner.remove(); state.replayBanner = null; }
    else state.replayBanner.textContent = "Replay: showing the run as it stood at step " + steps[index].toLocaleString("en-US") +
      " of " + steps[steps.length - 1].toLocaleString("en-US") + ".";
  }
}

// After a live update: a reader at the newest step follows the new ones.
function followReplay() {
  var replay = $("#replay"), steps = state.page.steps;
  var latest = state.upto === null, index = steps.length - 1;
  if (!latest) {
    while (index > 0 && steps[index] > state.upto) index--;
  }
  replay.max = Math.max(0, steps.length - 1);
  replay.disabled = steps.length < 2;
  replay.value = String(Math.max(0, index));
  showReplay(replay.value);
}
