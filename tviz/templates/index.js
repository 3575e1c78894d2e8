// The index: sortable table, live "quiet" status, metric overlay of ticked runs, tokens/day.

var DATA = readJSON("index-data");
var table = $("#runs");
var names = new Map();  // run ids are text from the database: no plain-object keys
DATA.runs.forEach(function (r) { names.set(r.id, r.name); });

$$(".status[data-status]").forEach(function (pill) {
  var last = pill.dataset.last ? Number(pill.dataset.last) : null;
  var now = liveStatus(pill.dataset.status, last, DATA.quietAfter);
  if (now !== pill.dataset.status) {
    pill.textContent = now;
    pill.className = "status status-" + now;
    pill.title = "still marked running; no data for " + fmtAgo(Date.now() / 1000 - last);
  }
});

if (table) {
  $$("th", table).forEach(function (th, col) {
    if (th.dataset.key === "pick") return;
    th.addEventListener("click", function () {
      var asc = th.getAttribute("aria-sort") !== "ascending";
      $$("th", table).forEach(function (o) { o.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", asc ? "ascending" : "descending");
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
    });
  });
}

var overlayView = null;
function drawOverlay() {
  var node = $("#overlay");
  if (!node) return;
  var metric = $("#metric").value;
  var rows = [];
  var picked = $$(".pick").filter(function (c) { return c.checked; }).map(function (c) { return c.value; });
  var used = 0;
  picked.forEach(function (id) {
    // Metric names are text from the database too: "constructor" must not find Object's.
    var s = ownGet(ownGet(DATA.metrics, id), metric);
    if (!Array.isArray(s) || !Array.isArray(s[0]) || !Array.isArray(s[1])) return;
    used++;
    var label = names.get(id) + " (" + id + ")";
    for (var i = 0; i < s[0].length; i++) rows.push({ step: s[0][i], value: s[1][i], run: label });
  });
  $("#overlay-status").textContent = picked.length ? used + " of " + picked.length + " ticked runs logged this metric" : "tick runs in the table to compare them";
  var spec = JSON.parse(JSON.stringify(DATA.specs.overlay));
  spec.datasets = { rows: rows };
  if (overlayView) overlayView.finalize();
  vegaEmbed(node, spec, embedOptions()).then(function (res) { overlayView = res.view; node.dataset.drawn = "yes"; });
}
if ($("#overlay")) {
  $("#metric").addEventListener("change", drawOverlay);
  $$(".pick").forEach(function (c) { c.addEventListener("change", drawOverlay); });
  drawOverlay();
}
if ($("#tokens")) {
  var spec = JSON.parse(JSON.stringify(DATA.specs.tokens));
  spec.datasets = { rows: DATA.tokensPerDay };
  // SVG: a few dozen bars draw crisply, and each bar is an element tests can measure.
  var tokenOptions = Object.assign(embedOptions(), { renderer: "svg" });
  vegaEmbed($("#tokens"), spec, tokenOptions).then(function () { $("#tokens").dataset.drawn = "yes"; });
}
document.body.dataset.ready = "yes";
