// Charts: drawn in view, smoothed, log scale, replay.

function ema(values, weight) {
  var out = new Array(values.length), last = 0, n = 0;
  for (var i = 0; i < values.length; i++) {
    var v = values[i];
    if (v === null) { out[i] = null; continue; }
    last = last * weight + (1 - weight) * v;
    n++;
    out[i] = weight > 0 ? last / (1 - Math.pow(weight, n)) : v;  // debiased, as TensorBoard
  }
  return out;
}

function chartRows(desc) {
  var limit = upto(), rows = [];
  if (desc.kind === "heat") {
    return desc.rows.filter(function (r) { return r.s0 <= limit; });
  }
  Object.keys(desc.series).forEach(function (name) {
    var steps = desc.series[name][0], values = desc.series[name][1];
    var smooth = ema(values, state.smooth);
    for (var i = 0; i < steps.length && steps[i] <= limit; i++) {
      rows.push({ step: steps[i], value: values[i], smooth: smooth[i], series: name });
    }
  });
  return rows;
}

function chartValues(desc) {
  if (desc.kind !== "line") return [];
  var all = [];
  Object.keys(desc.series).forEach(function (k) { all = all.concat(desc.series[k][1]); });
  return all;
}

function positive(desc) {
  return chartValues(desc).every(function (v) { return v === null || v > 0; });
}

function chartNode(id) { return $('.chart[data-chart="' + CSS.escape(id) + '"]'); }

function draw(id) {
  var node = chartNode(id);
  var desc = ownGet(state.page.charts, id);
  if (!node || !desc) return Promise.resolve();
  var rows = chartRows(desc);
  if (!rows.length && desc.kind === "line") {
    node.textContent = "";
    node.appendChild(el("div", { class: "panel-empty", text: "no values up to this step" }));
  }
  var spec = withScale(ownGet(state.page.specs, desc.spec), state.log && desc.kind === "line", chartValues(desc));
  spec.datasets = { rows: rows };
  if (desc.kind === "line") {
    spec.params.forEach(function (p) { if (p.name === "rawOpacity") p.value = state.smooth > 0 ? 0.25 : 1; });
  }
  var old = state.drawn[id];
  if (old) { old.finalize(); }
  node.dataset.drawn = "pending";
  var from = state.page;
  return vegaEmbed(node, spec, embedOptions()).then(function (res) {
    state.drawn[id] = res.view;
    node.dataset.drawn = "yes";
    node.dataset.lastStep = lastStep(rows);
    if (state.page !== from) refresh(id);  // the page was updated while this chart was drawn
    if (desc.click && $("#rollouts")) {
      node.classList.add("clickable");
      res.view.addEventListener("click", function (event, item) {
        var d = item && item.datum;
        while (d && d.datum) d = d.datum;  // the hover layer wraps the row
        if (!d) return;
        var step = d.step !== undefined ? d.step : d.s0;
        if (step !== undefined) openStep(step, desc.kind === "heat" ? d.s1last : null);
      });
    }
  }).catch(function (err) {
    node.dataset.drawn = "error";
    node.textContent = "This chart could not be drawn: " + err;
  });
}

// New data for a drawn chart through its Vega view: its zoom and hover stay as they are.
function refresh(id) {
  var view = state.drawn[id];
  var desc = ownGet(state.page.charts, id);
  if (!view) return Promise.resolve();
  var rows = chartRows(desc);
  view.data("rows", rows);
  if (desc.kind === "line") view.signal("rawOpacity", state.smooth > 0 ? 0.25 : 1);
  return view.runAsync().then(function () {
    var node = chartNode(id);
    if (node) node.dataset.lastStep = lastStep(rows);  // what is drawn, for tests and benchmarks
  });
}

function lastStep(rows) {
  var last = -Infinity;
  rows.forEach(function (r) {
    var s = r.step !== undefined ? r.step : r.s1last;
    if (s > last) last = s;
  });
  return isFinite(last) ? String(last) : "";
}

// Draw a chart when it comes near the viewport: a run logging 40 metrics must not pay for 40
// charts before the reader sees the first.
const observer = new IntersectionObserver(function (entries) {
  entries.forEach(function (entry) {
    if (!entry.isIntersecting) return;
    observer.unobserve(entry.target);
    draw(entry.target.dataset.chart);
  });
}, { rootMargin: "300px 0px" });

// Then draw the rest one at a time while the browser is idle, so scrolling finds them ready.
function drawIdle() {
  var next = $$(".chart[data-chart]").find(function (n) { return !n.dataset.drawn; });
  if (!next) return;
  observer.unobserve(next);
  draw(next.dataset.chart).then(function () { idle(drawIdle); });
}
const idle = window.requestIdleCallback || function (f) { return setTimeout(f, 50); };

function startCharts() {
  $$(".chart[data-chart]").forEach(function (node) { observer.observe(node); });
  setTimeout(function () { idle(drawIdle); }, 300);
}

function redrawAll() {
  Object.keys(state.drawn).forEach(function (id) { draw(id); });
}

// New rows for every drawn chart, the ones in sight first. Vega's expression interpreter
// takes ~40 ms a chart of 1,000 points: done at once, 34 charts of a long run would freeze
// the page for over a second. So a chart is only marked stale here, and caught up when it
// comes near the viewport or, one at a time, while the browser is idle.
const staleObserver = new IntersectionObserver(function (entries) {
  entries.forEach(function (entry) {
    if (!entry.isIntersecting) return;
    staleObserver.unobserve(entry.target);
    var id = entry.target.dataset.chart;
    setTimeout(function () { catchUp(id); }, 0);  // one chart a task: each paints when done
  });
}, { rootMargin: "300px 0px" });
function refreshAll() {
  Object.keys(state.drawn).forEach(function (id) { refreshLater(id, false); });
}
function refreshLater(id, redo) {
  state.stale.set(id, redo || state.stale.get(id) === true);
  var node = chartNode(id);
  if (node) { staleObserver.unobserve(node); staleObserver.observe(node); }
  if (!state.catchingUp) { state.catchingUp = true; idle(catchUpIdle); }
}
function catchUp(id) {
  if (!state.stale.has(id)) return Promise.resolve();
  var redo = state.stale.get(id);
  state.stale.delete(id);
  var node = chartNode(id);
  if (node) staleObserver.unobserve(node);
  return redo ? draw(id) : refresh(id);
}
function catchUpIdle() {
  var next = state.stale.keys().next();
  if (next.done) { state.catchingUp = false; return; }
  catchUp(next.value).then(function () { idle(catchUpIdle); });
}
