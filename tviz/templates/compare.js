// The comparison page: every shared metric overlaid, one fixed colour per run (a run keeps
// its colour when others are hidden: each run is a slot of the spec with its own colour),
// groups as mean + band, the run pages' smoothing (run/smooth.js), shared zoom, other x axes.

var DATA = readJSON("compare-data");
var state = { smooth: DATA.smoothing, axis: "step", zoom: null, shown: new Set(), views: new Map() };
$$(".slot-pick").forEach(function (c) { if (c.checked) state.shown.add(Number(c.value)); });

// A slot's x for `step` on the current axis: the step, or the run's wall time / tokens at
// that step (linear between logged steps; null outside them).
function xOf(slot, step) {
  if (state.axis === "step") return step;
  var axis = ownGet(DATA.slots[slot].axes, state.axis);
  if (!axis) return null;
  var s = axis[0], x = axis[1], lo = 0, hi = s.length - 1;
  if (!s.length || step < s[0] || step > s[hi]) return null;
  while (hi - lo > 1) { var mid = (lo + hi) >> 1; if (s[mid] <= step) lo = mid; else hi = mid; }
  if (s[lo] === step || hi === lo) return x[lo];
  return x[lo] + (x[hi] - x[lo]) * (step - s[lo]) / (s[hi] - s[lo]);
}
function scaleX(v) { return state.axis === "time" ? v / timeUnit().div : v; }
function timeUnit() {
  var most = 0;
  DATA.slots.forEach(function (s) { var a = ownGet(s.axes, "time"); if (a && a[1].length) most = Math.max(most, a[1][a[1].length - 1]); });
  return most > 3 * 3600 ? { div: 3600, name: "hours" } : most > 180 ? { div: 60, name: "minutes" } : { div: 1, name: "seconds" };
}
function axisTitle() {
  if (state.axis === "time") return "wall time (" + timeUnit().name + ")";
  return DATA.axisLabels[state.axis];
}

function smoothCache(chart, slot, values) {
  if (!chart._sm) chart._sm = new Map();
  var key = state.smooth + "|" + slot, found = chart._sm.get(key);
  if (!found) { found = ema(values, state.smooth); chart._sm.set(key, found); }
  return found;
}

// The datasets, domains and count of a chart now.
function chartData(chart) {
  var sets = {}, lo = Infinity, hi = -Infinity, xlo = Infinity, xhi = -Infinity, count = 0;
  var longest = 0;  // a series logged at a few steps only (an eval) is drawn as dots
  Object.keys(chart.series).forEach(function (k) { longest = Math.max(longest, chart.series[k][0].length); });
  DATA.slots.forEach(function (slotInfo, i) {
    sets["r" + i] = []; sets["m" + i] = []; sets["d" + i] = []; sets["b" + i] = [];
    var s = ownGet(chart.series, String(i));
    if (!s || !state.shown.has(i)) return;
    var steps = s[0], values = s[1], sm = state.smooth > 0 ? smoothCache(chart, i, values) : null;
    var sparse = steps.length <= 60 && steps.length * 3 < longest, band = ownGet(chart.bands, String(i));
    for (var k = 0; k < steps.length; k++) {
      var x = xOf(i, steps[k]);
      if (x === null) continue;
      x = scaleX(x);
      if (x < xlo) xlo = x;
      if (x > xhi) xhi = x;
      var inside = !state.zoom || (x >= state.zoom[0] && x <= state.zoom[1]);
      sets["r" + i].push({ step: x, value: values[k] });
      if (sm) sets["m" + i].push({ step: x, value: sm[k] });
      if (sparse && values[k] !== null) sets["d" + i].push({ step: x, value: values[k] });
      if (band) sets["b" + i].push({ step: x, lo: band[1][k], hi: band[2][k] });
      if (!inside) continue;
      var ys = [values[k], sm ? sm[k] : null];
      if (band) ys.push(band[1][k], band[2][k]);
      ys.forEach(function (v) { if (v !== null && v !== undefined) { if (v < lo) lo = v; if (v > hi) hi = v; } });
      if (values[k] !== null) count++;
    }
  });
  var xd = state.zoom ? state.zoom.slice() : (xlo <= xhi ? [xlo, xhi === xlo ? xlo + 1 : xhi] : [0, 1]);
  var yd = lo <= hi ? (lo === hi ? [lo - 0.5, hi + 0.5] : [lo - (hi - lo) * 0.05, hi + (hi - lo) * 0.05]) : [0, 1];
  return { sets: sets, x: xd, y: yd, count: count };
}

function themeConfig() {
  var css = getComputedStyle(document.documentElement);
  function v(name) { return css.getPropertyValue(name).trim() || undefined; }
  var axis = { labelColor: v("--chart-label"), titleColor: v("--chart-label"), gridColor: v("--chart-grid"),
    domainColor: v("--chart-domain"), tickColor: v("--chart-domain"), labelFontSize: 11, titleFontWeight: 500 };
  return { axis: axis, style: { cell: { stroke: null } } };
}

function draw(chart) {
  var node = $('.chart[data-chart="' + CSS.escape(chart.id) + '"]');
  var data = chartData(chart);
  var old = state.views.get(chart.id);
  if (old) {
    Object.keys(data.sets).forEach(function (name) { old.data(name, data.sets[name]); });
    old.signal("xdom", data.x).signal("ydom", data.y).signal("xtitle", axisTitle())
      .signal("rawOpacity", state.smooth > 0 ? 0.25 : 1);
    return old.runAsync().then(function () { node.dataset.points = String(data.count); });
  }
  var spec = JSON.parse(JSON.stringify(DATA.spec));
  spec.data.forEach(function (d) { if (own(data.sets, d.name)) d.values = data.sets[d.name]; });
  spec.signals.forEach(function (s) {
    if (s.name === "xdom") s.value = data.x;
    else if (s.name === "ydom") s.value = data.y;
    else if (s.name === "xtitle") s.value = axisTitle();
    else if (s.name === "rawOpacity") s.value = state.smooth > 0 ? 0.25 : 1;
  });
  spec.config = Object.assign({}, spec.config || {}, themeConfig());
  return vegaEmbed(node, spec, embedOptions("vega")).then(function (res) {
    state.views.set(chart.id, res.view);
    node.dataset.drawn = "yes";
    node.dataset.points = String(data.count);
    zoomable(node, res.view);
  });
}

function drawAll() { return Promise.all(DATA.charts.map(draw)); }

// Drag across a chart: every chart shows that x range; double-click: back to everything.
function zoomable(node, view) {
  var start = null, band = null;
  function xAt(e) {
    var rect = node.getBoundingClientRect(), origin = view.origin();
    return view.scale("x").invert(e.clientX - rect.left - origin[0]);
  }
  node.addEventListener("pointerdown", function (e) {
    start = { px: e.clientX, x: xAt(e) };
    band = el("div", { class: "zoom-band", style: "position:absolute;top:0;bottom:0;background:rgba(59,111,212,0.15);pointer-events:none" });
    node.style.position = "relative";
    node.appendChild(band);
  });
  node.addEventListener("pointermove", function (e) {
    if (!start || !band) return;
    var rect = node.getBoundingClientRect();
    var a = Math.min(start.px, e.clientX) - rect.left, b = Math.max(start.px, e.clientX) - rect.left;
    band.style.left = a + "px"; band.style.width = (b - a) + "px";
  });
  window.addEventListener("pointerup", function (e) {
    if (!start) return;
    var end = xAt(e), moved = Math.abs(e.clientX - start.px) > 4;
    if (band) band.remove();
    band = null;
    var from = start.x;
    start = null;
    if (moved) { state.zoom = [Math.min(from, end), Math.max(from, end)]; drawAll(); }
  });
  node.addEventListener("dblclick", function () { state.zoom = null; drawAll(); });
}

function setup() {
  var select = $("#x-axis");
  DATA.axes.forEach(function (a) { select.appendChild(el("option", { value: a, text: DATA.axisLabels[a] })); });
  select.addEventListener("change", function () { state.axis = select.value; state.zoom = null; drawAll(); });
  var slider = $("#smoothing"), shown = $("#smoothing-value");
  slider.value = String(state.smooth);
  shown.textContent = state.smooth > 0 ? state.smooth.toFixed(2) : "off";
  slider.addEventListener("input", function () {
    state.smooth = Number(slider.value);
    shown.textContent = state.smooth > 0 ? state.smooth.toFixed(2) : "off";
    drawAll();
  });
  $("#reset-zoom").addEventListener("click", function () { state.zoom = null; drawAll(); });
  $("#slot-toggles").addEventListener("change", function (e) {
    if (!e.target.classList.contains("slot-pick")) return;
    var i = Number(e.target.value);
    if (e.target.checked) state.shown.add(i); else state.shown.delete(i);
    drawAll();
  });
}

setup();
drawAll().then(function () { document.body.dataset.ready = "yes"; });
