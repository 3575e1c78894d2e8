// Charts: Vega views drawn when they come near the viewport, fed with what the page computes
// first (rows, smoothing, both domains, the axis format), so that Vega evaluates no expression
// per point: the CSP makes it interpret them, slowly (see tviz/render/charts.py). Hover,
// tooltip, zoom and clicks are the page's own (hover.js).

function colorsOf(desc) { return desc.kind === "line" ? String(desc.spec).split(":")[2].split("|") : []; }
function seriesNames(desc) { return desc.kind === "line" ? Object.keys(desc.series) : []; }
function chartNode(id) { return $('.chart[data-chart="' + CSS.escape(id) + '"]'); }

// Index of the first of the sorted `steps` past `limit`.
function cut(steps, limit) {
  var lo = 0, hi = steps.length;
  while (lo < hi) { var mid = (lo + hi) >> 1; if (steps[mid] <= limit) lo = mid + 1; else hi = mid; }
  return lo;
}

// A series' smoothed values, computed once per smoothing weight.
function smoothedOf(desc, name) {
  if (!desc._smooth) desc._smooth = new Map();
  var key = state.smooth + "|" + name, found = desc._smooth.get(key);
  if (!found) { found = ema(desc.series[name][1], state.smooth); desc._smooth.set(key, found); }
  return found;
}

// A series logged at a few steps only (an eval every 50 steps): drawn as dots on a faint line.
function isSparse(steps) { return steps.length <= 60 && steps.length * 3 < state.page.steps.length; }

// The step range every step chart shows: the zoom, else the whole run (up to the replay step).
function xDomain() {
  if (state.zoom) return state.zoom.slice();
  var steps = state.page.steps;
  if (!steps.length) return [0, 1];
  var last = state.upto === null ? steps[steps.length - 1] : Math.max(steps[0], state.upto);
  return [steps[0] - 0.5, last + 0.5];
}

function logScale(desc) { return state.log && desc.kind === "line"; }

// What a chart shows now: its datasets, domains, whether it has anything.
function chartData(desc) {
  var x = xDomain(), limit = upto();
  if (desc.kind === "heat") {
    var rows = desc.rows.filter(function (r) { return r.s0 <= limit; }).map(function (r) {
      return { s0: r.s0 - 0.5, s1: r.s1 - 0.5, r0: r.r0, label: r.label, frac: r.frac, row: r };
    });
    return { sets: { rows: rows }, x: x, y: null, count: rows.length };
  }
  var sets = {}, lo = Infinity, hi = -Infinity, count = 0, log = logScale(desc), sparse = true;
  seriesNames(desc).forEach(function (name, i) {
    var steps = desc.series[name][0], values = desc.series[name][1];
    var n = cut(steps, limit), sm = state.smooth > 0 ? smoothedOf(desc, name) : null;
    var first = Math.max(0, cut(steps, x[0]) - 1), end = Math.min(n, cut(steps, x[1]) + 1);
    var raw = [], smooth = [], dots = [];
    var few = isSparse(steps);
    sparse = sparse && few;
    for (var k = first; k < end; k++) {
      var v = values[k], s = sm ? sm[k] : null, inside = steps[k] >= x[0] && steps[k] <= x[1];
      raw.push({ step: steps[k], value: v });
      if (sm) smooth.push({ step: steps[k], value: s });
      if (few && v !== null) dots.push({ step: steps[k], value: v });
      if (!inside) continue;
      [v, s].forEach(function (w) {
        if (w === null || (log && w <= 0)) return;
        if (w < lo) lo = w;
        if (w > hi) hi = w;
      });
      if (v !== null) count++;
    }
    sets["r" + i] = raw; sets["m" + i] = smooth; sets["d" + i] = dots;
  });
  return { sets: sets, x: x, y: yDomain(lo, hi, log), count: count, sparse: sparse };
}

function rawOpacity(data) { return data.sparse ? 0.35 : state.smooth > 0 ? 0.25 : 1; }

// The y axis' title: the unit when the run or the catalog says it, else the metric's own name.
function yTitle(desc) {
  if (desc.unit) return desc.unit;
  if (!desc.metric) return "";
  var name = String(desc.name || "");
  return name.slice(name.lastIndexOf("/") + 1);
}

// Colours of the axes and legends, from the page's CSS (light or dark theme).
function themeConfig() {
  var css = getComputedStyle(document.documentElement);
  function v(name) { return css.getPropertyValue(name).trim(); }
  var axis = { labelColor: v("--chart-label"), titleColor: v("--chart-label"), gridColor: v("--chart-grid"),
    domainColor: v("--chart-domain"), tickColor: v("--chart-domain"), labelFontSize: 11, titleFontWeight: 500 };
  return { axis: axis, legend: { labelColor: axis.labelColor, titleColor: axis.labelColor }, style: { cell: { stroke: null } } };
}

// The spec of a chart, ready to embed with `data`: values, signals, axis format and title.
function chartSpec(desc, data, config) {
  var spec = JSON.parse(JSON.stringify(ownGet(state.page.specs, desc.spec)));
  spec.data.forEach(function (d) { if (own(data.sets, d.name)) d.values = data.sets[d.name]; });
  spec.signals.forEach(function (s) {
    if (s.name === "xdom") s.value = data.x;
    else if (s.name === "ydom") s.value = data.y;
    else if (s.name === "yfmt" && data.y) s.value = tickFormat(data.y[0], data.y[1]);
    else if (s.name === "rawOpacity") s.value = rawOpacity(data);
  });
  if (desc.kind === "line") {
    // Vega reads a title named like an Object.prototype key ("constructor") as a reference to
    // one of its operators: a zero-width space in front keeps it text.
    var title = yTitle(desc);
    if (title in Object.prototype) title = "\u200b" + title;
    spec.axes.forEach(function (a) { if (a.scale === "y" && a.labels !== false) a.title = title; });
    var names = seriesNames(desc);
    if (names.length > 1) {  // a legend of the series (a few symbols: no cost per point)
      spec.scales.push({ name: "legend", type: "ordinal", domain: names, range: colorsOf(desc) });
      spec.legends = [{ fill: "legend", orient: "top", direction: "horizontal", symbolType: "circle", symbolSize: 60, labelFontSize: 11 }];
    }
    if (logScale(desc)) {
      spec.scales.forEach(function (s) { if (s.name === "y") s.type = positive(desc) ? "log" : "symlog"; });
    }
  }
  spec.config = Object.assign({}, spec.config || {}, config || themeConfig());
  return spec;
}

function chartValues(desc) {
  if (desc.kind !== "line") return [];
  var all = [];
  seriesNames(desc).forEach(function (k) { all = all.concat(desc.series[k][1]); });
  return all;
}

function positive(desc) {
  return chartValues(desc).every(function (v) { return v === null || v > 0; });
}

function draw(id) {
  var node = chartNode(id);
  var desc = ownGet(state.page.charts, id);
  if (!node || !desc) return Promise.resolve();
  var data = chartData(desc);
  var old = state.drawn[id];
  if (old) { old.finalize(); delete state.drawn[id]; }
  node.textContent = "";
  if (!data.count && desc.kind === "line") {
    node.appendChild(el("div", { class: "panel-empty", text: "no values up to this step" }));
  }
  node.dataset.drawn = "pending";
  var from = state.page;
  return vegaEmbed(node, chartSpec(desc, data), embedOptions("vega")).then(function (res) {
    state.drawn[id] = res.view;
    node.dataset.drawn = "yes";
    node.dataset.lastStep = lastStep(data);
    node.dataset.x = data.x.join(",");
    node.dataset.dots = data.sparse ? "yes" : "";
    attachPointer(id, node, res.view);
    if (state.page !== from) refresh(id);  // the page was updated while this chart was drawn
  }).catch(function (err) {
    node.dataset.drawn = "error";
    node.textContent = "This chart could not be drawn: " + err;
  });
}

// New data for a drawn chart through its Vega view: the same canvas, hover and zoom.
function refresh(id) {
  var view = state.drawn[id];
  var desc = ownGet(state.page.charts, id);
  if (!view || !desc) return Promise.resolve();
  var data = chartData(desc);
  Object.keys(data.sets).forEach(function (name) { view.data(name, data.sets[name]); });
  view.signal("xdom", data.x);
  if (desc.kind === "line") {
    view.signal("ydom", data.y).signal("yfmt", tickFormat(data.y[0], data.y[1]));
    view.signal("rawOpacity", rawOpacity(data));
  }
  return view.runAsync().then(function () {
    var node = chartNode(id);
    if (!node) return;
    node.dataset.lastStep = lastStep(data);  // what is drawn, for tests and benchmarks
    node.dataset.x = data.x.join(",");
  });
}

function lastStep(data) {
  var last = -Infinity;
  Object.keys(data.sets).forEach(function (name) {
    data.sets[name].forEach(function (r) {
      var s = r.row ? r.row.s1last : r.step;
      if (s > last) last = s;
    });
  });
  return isFinite(last) ? String(last) : "";
}

// Draw a chart when it comes near the viewport: a run logging 50 metrics must not pay for 50
// charts before the reader sees the first.
const observer = new IntersectionObserver(function (entries) {
  entries.forEach(function (entry) {
    if (!entry.isIntersecting) return;
    observer.unobserve(entry.target);
    if (!entry.target.dataset.drawn) draw(entry.target.dataset.chart);
  });
}, { rootMargin: "400px 0px" });

// Then draw the rest one at a time while the browser is idle, so scrolling finds them ready.
function drawIdle() {
  var next = $$(".chart[data-chart]").find(function (n) { return !n.dataset.drawn && !n.closest("[hidden]"); });
  if (!next) return;
  observer.unobserve(next);
  draw(next.dataset.chart).then(function () { idle(drawIdle); });
}
const idle = window.requestIdleCallback || function (f) { return setTimeout(f, 50); };

function startCharts() {
  $$(".chart[data-chart]").forEach(function (node) { observer.observe(node); });
  setTimeout(function () { idle(drawIdle); }, 300);
  // The theme follows the system's: charts take its colours when it changes.
  var dark = window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)");
  if (dark && dark.addEventListener) dark.addEventListener("change", redrawAll);
}

function redrawAll() {
  Object.keys(state.drawn).forEach(function (id) {
    var node = chartNode(id);
    if (node) node.dataset.drawn = "stale";  // drawn, but not as it now should be
    refreshLater(id, true);
  });
}

// New rows for every drawn chart, the ones in sight first. Vega takes ~10-40 ms a chart of
// 1,000 points: done at once, 50 charts would freeze the page for a second. So a chart is only
// marked stale here, and caught up when it comes near the viewport or, one at a time, while
// the browser is idle.
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
