// Toolbar: smoothing (on by default for long runs, and the page says so), log scale, replay,
// the zoom's reset.

function startToolbar() {
  var smoothing = $("#smoothing");
  var byDefault = defaultSmoothing(state.page.steps.length);
  function showSmoothing() {
    $("#smoothing-value").textContent = state.smooth > 0 ? state.smooth.toFixed(2) : "off";
    var note = $("#smoothing-note");
    if (note) {
      note.hidden = !(byDefault > 0 && state.smooth === byDefault);
      note.textContent = "Lines are smoothed by default for a run of " + fmt(state.page.steps.length) +
        " steps (moving average " + byDefault.toFixed(2) + "; raw values faint): set Smoothing to 0 for the raw lines.";
    }
  }
  state.smooth = byDefault;
  smoothing.value = String(byDefault);
  showSmoothing();
  smoothing.addEventListener("input", function () {
    state.smooth = Number(smoothing.value);
    showSmoothing();
    refreshAll();
  });
  $("#logscale").addEventListener("change", function (e) {
    state.log = e.target.checked;
    redrawAll();
  });
  $("#zoom-reset").addEventListener("click", resetZoom);

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
  // Sections land below the sticky toolbar, whatever its height at this width.
  var setHeight = function () { document.documentElement.style.setProperty("--toolbar-h", $("#toolbar").offsetHeight + "px"); };
  setHeight();
  window.addEventListener("resize", setHeight);
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
