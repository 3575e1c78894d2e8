// The index: sortable table, live "quiet" status, headline-metric overlay of ticked runs
// (each run's reward, KL, entropy or output length under the role's key; the run's own metric
// name in DATA.sources), tokens/day.

var DATA = readJSON("index-data");
var table = $("#runs");
var names = new Map();  // run ids are text from the database: no plain-object keys
DATA.runs.forEach(function (r) { names.set(r.id, r.name); });

markQuiet();
function markQuiet() {
  $$(".status[data-status]").forEach(function (pill) {
    var last = pill.dataset.last ? Number(pill.dataset.last) : null;
    var now = liveStatus(pill.dataset.status, last, DATA.quietAfter);
    if (now !== pill.dataset.status) {
      pill.textContent = now;
      pill.className = "status status-" + now;
      pill.title = "still marked running; no data for " + fmtAgo(Date.now() / 1000 - last);
    }
  });
}

function sortRows(col, asc) {
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  rows.sort(function (a, b) {
    var x = a.cells[col].dataset.sort, y = b.cells[col].dataset.sort;
    var nx = x === "" ? null : Number(x), ny = y === "" ? null : Number(y);
    var cmp;
    if (nx === null || ny === null) cmp = (nx === null) - (ny === null);  // blanks last
    else if (!isNaN(nx) && !isNaN(ny)) cmp = asc ? nx - ny : ny - nx;
    else cmp = asc ? x.localeCompare(y) : y.localeCompare(x);
    return cmp;
  });
  rows.forEach(function (r) { body.appendChild(r); });
}

if (table) {
  $$("th", table).forEach(function (th, col) {
    if (th.dataset.key === "pick") return;
    th.addEventListener("click", function () {
      var asc = th.getAttribute("aria-sort") !== "ascending";
      $$("th", table).forEach(function (o) { o.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", asc ? "ascending" : "descending");
      sortRows(col, asc);
    });
  });
}

var overlayView = null;
// A run's label and colour: by its place among all runs, so it keeps its colour whichever
// runs are ticked; a group's from its first run.
function runLabel(id) { return names.get(id) + " (" + id + ")"; }
function colorScale() {
  var domain = [], range = [];
  DATA.runs.forEach(function (r, i) { domain.push(runLabel(r.id)); range.push(DATA.palette[i % DATA.palette.length]); });
  Object.keys(DATA.groups || {}).forEach(function (g) {
    var first = DATA.runs.findIndex(function (r) { return r.id === DATA.groups[g].runs[0]; });
    domain.push("group " + g); range.push(DATA.palette[Math.max(0, first) % DATA.palette.length]);
  });
  return { domain: domain, range: range };
}
function asGroups() { var box = $("#as-groups"); return !!(box && box.checked); }
function pickedIds() { return $$(".pick").filter(function (c) { return c.checked; }).map(function (c) { return c.value; }); }
function groupOf(id) {
  if (!asGroups()) return null;
  var found = null;
  Object.keys(DATA.groups || {}).forEach(function (g) { if (DATA.groups[g].runs.indexOf(id) >= 0) found = g; });
  return found;
}
var bands = [], overlayKey = null, overlayBands = false;
// The metric a run logged for `role` (text from the database: looked up as own keys only).
function sourceOf(id, role) {
  var name = ownGet(ownGet(DATA.sources, id), role);
  return typeof name === "string" ? name : "";
}
function roleLabel(role) {
  var found = (DATA.roles || []).find(function (r) { return r[0] === role; });
  return found ? found[1] : role;
}
function overlayRows() {
  var metric = $("#metric").value;
  var rows = [];
  var picked = pickedIds();
  var used = 0, drawnGroups = new Set(), sources = [];
  var noteSource = function (name) { if (name && sources.indexOf(name) < 0) sources.push(name); };
  bands = [];
  picked.forEach(function (id) {
    var g = groupOf(id);
    if (g !== null) {
      if (drawnGroups.has(g)) { used++; return; }
      var agg = ownGet(DATA.groups[g].metrics, metric);
      if (!Array.isArray(agg)) return;
      drawnGroups.add(g); used++;
      var names = [];
      DATA.groups[g].runs.forEach(function (m) {
        var n = sourceOf(m, metric);
        if (n && names.indexOf(n) < 0) names.push(n);
      });
      names.forEach(noteSource);
      var shown = names.join(", ");
      for (var k = 0; k < agg[0].length; k++) {
        rows.push({ step: agg[0][k], value: agg[1][k], run: "group " + g, metric: shown });
        bands.push({ step: agg[0][k], lo: agg[2][k], hi: agg[3][k], run: "group " + g });
      }
      return;
    }
    // Run ids are text from the database too: "constructor" must not find Object's.
    var s = ownGet(ownGet(DATA.metrics, id), metric);
    if (!Array.isArray(s) || !Array.isArray(s[0]) || !Array.isArray(s[1])) return;
    used++;
    var label = runLabel(id), source = sourceOf(id, metric);
    noteSource(source);
    for (var i = 0; i < s[0].length; i++) rows.push({ step: s[0][i], value: s[1][i], run: label, metric: source });
  });
  $("#overlay-status").textContent = picked.length
    ? used + " of " + picked.length + " ticked runs logged a metric for " + roleLabel(metric)
      + (sources.length ? ": " + sources.join(", ") : "")
    : "tick runs in the table to compare them";
  return rows;
}
function drawOverlay() {
  var node = $("#overlay");
  if (!node) return;
  var spec = JSON.parse(JSON.stringify(DATA.specs.overlay));
  spec.datasets = { rows: overlayRows(), bands: bands };
  var scale = colorScale(), drawn = [];
  spec.datasets.rows.forEach(function (r) { if (drawn.indexOf(r.run) < 0) drawn.push(r.run); });
  (spec.layer || []).forEach(function (layer) {
    var c = layer.encoding && layer.encoding.color;
    if (c) c.scale = { domain: scale.domain, range: scale.range };
    if (c && c.legend) c.legend = Object.assign({}, c.legend, { values: drawn });  // the drawn runs only
  });
  if (bands.length && spec.layer) {  // groups: the min-max band under the mean line
    spec.layer.push({
      data: { name: "bands" }, mark: { type: "area", opacity: 0.18 },
      encoding: { x: { field: "step", type: "quantitative" }, y: { field: "lo", type: "quantitative", title: null },
        y2: { field: "hi" }, color: { field: "run", type: "nominal", scale: { domain: scale.domain, range: scale.range } } }
    });
  }
  showCommand();
  overlayKey = JSON.stringify([scale, asGroups()]);
  overlayBands = bands.length > 0;
  if (overlayView) overlayView.finalize();
  vegaEmbed(node, spec, embedOptions()).then(function (res) { overlayView = res.view; node.dataset.drawn = "yes"; });
}
// The `tviz compare` command for the ticked runs (copy it), and under `tviz watch` (its
// script sets tvizWatch, after this script ran: hence the event) a link that builds it there.
function showCommand() {
  var node = $("#compare-command");
  if (!node) return;
  var ids = pickedIds();
  var quote = function (t) { return /^[A-Za-z0-9_.\/:=@%+-]+$/.test(t) ? t : "'" + t.replace(/'/g, "'\\''") + "'"; };
  node.textContent = ids.length >= 2
    ? ["tviz", "compare"].concat(ids.map(quote), DATA.dbNames.flatMap(function (name) { return ["--db", quote(name)]; })).join(" ")
    : "tick two runs or more";
  var link = $("#open-compare"), live = window.tvizWatch && window.tvizWatch.compare;
  if (!link) return;
  link.hidden = !(live && ids.length >= 2 && ids.length <= live.max_runs);
  link.href = link.hidden ? "#" : live.path + "?" + ids.map(function (id) {
    return "run=" + encodeURIComponent(id);
  }).join("&");
}
addEventListener("tviz-watch", showCommand);
if ($("#copy-compare")) {
  $("#copy-compare").addEventListener("click", function () {
    var text = $("#compare-command").textContent;
    if (navigator.clipboard) navigator.clipboard.writeText(text).then(function () { toast("copied"); }, function () { toast(text); });
  });
}
if ($("#as-groups")) $("#as-groups").addEventListener("change", drawOverlay);
if ($("#overlay")) {
  $("#metric").addEventListener("change", drawOverlay);
  table.addEventListener("change", function (e) { if (e.target.classList.contains("pick")) drawOverlay(); });
  drawOverlay();
}
var tokensView = null;
function drawTokens() {
  var spec = JSON.parse(JSON.stringify(DATA.specs.tokens));
  spec.datasets = { rows: DATA.tokensPerDay };
  // SVG: a few dozen bars draw crisply, and each bar is an element tests can measure.
  var tokenOptions = Object.assign(embedOptions(), { renderer: "svg" });
  if (tokensView) tokensView.finalize();
  vegaEmbed($("#tokens"), spec, tokenOptions).then(function (res) { tokensView = res.view; $("#tokens").dataset.drawn = "yes"; });
}
if ($("#tokens")) drawTokens();

// ---- live update (tviz watch) ---------------------------------------------------------------
// Called by the script `tviz watch` adds with the rebuilt index as an inert parsed document
// (see run.js): the totals and the table are replaced, keeping the reader's sort order and
// ticked runs, and the charts get their new data through their Vega views (zoom stays).
// False when a section appeared or went away: the script then reloads the page.
window.tvizUpdate = function (doc) {
  var node = doc.getElementById("index-data");
  if (!node) return false;
  if (["#runs", "#overlay", "#tokens"].some(function (sel) { return !$(sel) !== !doc.querySelector(sel); })) {
    return false;
  }
  var old = DATA;
  DATA = JSON.parse(node.textContent);
  names = new Map();
  DATA.runs.forEach(function (r) { names.set(r.id, r.name); });
  var totals = $("dl.totals"), newTotals = doc.querySelector("dl.totals");
  if (totals && newTotals) totals.replaceWith(document.importNode(newTotals, true));
  if (table) {
    var ticked = new Map();
    $$(".pick").forEach(function (c) { ticked.set(c.value, c.checked); });
    var body = table.tBodies[0];
    body.textContent = "";
    $$("#runs tbody tr", doc).forEach(function (row) {
      var fresh = document.importNode(row, true), pick = $(".pick", fresh);
      if (pick && ticked.has(pick.value)) pick.checked = ticked.get(pick.value);
      body.appendChild(fresh);
    });
    markQuiet();
    var sorted = $$("th", table).findIndex(function (th) { return th.hasAttribute("aria-sort"); });
    if (sorted >= 0) sortRows(sorted, $$("th", table)[sorted].getAttribute("aria-sort") === "ascending");
  }
  var select = $("#metric"), newSelect = doc.getElementById("metric");
  if (select && newSelect && select.innerHTML !== newSelect.innerHTML) {
    var chosen = select.value;
    select.innerHTML = "";
    $$("option", newSelect).forEach(function (o) { select.appendChild(document.importNode(o, true)); });
    if ($$("option", select).some(function (o) { return o.value === chosen; })) select.value = chosen;
  }
  // New data through the view keeps the zoom; new runs or groups change the colours: redraw.
  if (overlayView && overlayKey === JSON.stringify([colorScale(), asGroups()])) {
    var fresh = overlayRows();
    if (!bands.length === !overlayBands) overlayView.data("rows", fresh);
    if (bands.length && overlayBands) overlayView.data("bands", bands);
    if (!bands.length === !overlayBands) overlayView.runAsync(); else drawOverlay();
  } else if (overlayView) drawOverlay();
  else if ($("#overlay")) drawOverlay();
  if ($("#tokens")) {
    if (tokensView && JSON.stringify(DATA.specs.tokens) === JSON.stringify(old.specs.tokens)) {
      tokensView.data("rows", DATA.tokensPerDay).runAsync();
    } else {
      drawTokens();
    }
  }
  showCommand();
  return true;
};
document.body.dataset.ready = "yes";
