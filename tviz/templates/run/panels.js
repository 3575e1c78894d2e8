// Chart panels: pins (kept by the browser for this run), the filter over metric names, and
// saving a chart as SVG / PNG or its data as CSV, all offline.

// localStorage from file:// works in Chromium and Firefox; where storage is blocked (a
// sandboxed frame, a privacy setting) pins simply last as long as the page.
function storage() {
  try { return window.localStorage || null; } catch (err) { return null; }
}
function pinKey() { return "tviz.pins." + state.page.run.id; }
function readPins() {
  var store = storage();
  try {
    var list = store ? JSON.parse(store.getItem(pinKey()) || "[]") : [];
    return Array.isArray(list) ? list.filter(function (n) { return typeof n === "string"; }) : [];
  } catch (err) { return []; }
}
function writePins(list) {
  var store = storage();
  try { if (store) store.setItem(pinKey(), JSON.stringify(list)); } catch (err) { /* full or blocked */ }
}

// Pinned panels move to the Pinned section; a placeholder keeps their place to go back to.
function pinPanel(fig, on) {
  var id = fig.dataset.panel, home = $('.pin-home[data-for="' + CSS.escape(id) + '"]');
  if (on && !home) {
    fig.before(el("span", { class: "pin-home", "data-for": id, hidden: true }));
    $("#pinned-grid").appendChild(fig);
  } else if (!on && home) {
    home.replaceWith(fig);
  }
  $(".pin", fig).setAttribute("aria-pressed", on ? "true" : "false");
  $(".pin", fig).textContent = on ? "unpin" : "pin";
  $("#pinned").hidden = !$("#pinned-grid").children.length;
}

function startPanels() {
  var pins = readPins();
  $$("figure.panel[data-panel]").forEach(function (fig) {
    $(".pin", fig).addEventListener("click", function () {
      var name = fig.dataset.name, list = readPins().filter(function (n) { return n !== name; });
      var on = $(".pin", fig).getAttribute("aria-pressed") !== "true";
      if (on) list.push(name);
      pinPanel(fig, on);
      writePins(list);
    });
    $(".save", fig).addEventListener("click", function (e) { saveMenu(fig, e.currentTarget); });
  });
  pins.forEach(function (name) {
    var fig = $$("figure.panel[data-name]").find(function (f) { return f.dataset.name === name && !f.closest(".overview"); }) ||
      $$("figure.panel[data-name]").find(function (f) { return f.dataset.name === name; });
    if (fig) pinPanel(fig, true);
  });
  var filter = $("#metric-filter");
  if (filter) filter.addEventListener("input", function () { filterMetrics(filter.value); });
}

// Show only the metrics whose name holds the text; groups with none are hidden.
function filterMetrics(text) {
  var q = text.trim().toLowerCase(), shown = 0, total = 0;
  $$(".metrics .metric-group").forEach(function (group) {
    var any = false;
    $$("figure.panel, .constant", group).forEach(function (item) {
      var ok = !q || item.dataset.name.toLowerCase().indexOf(q) >= 0;
      item.hidden = !ok;
      total++;
      if (ok) { shown++; any = true; }
    });
    group.hidden = !any;
  });
  $("#metric-filter-status").textContent = q ? shown + " of " + total + " metrics" : "";
}

function saveMenu(fig, button) {
  var open = $(".save-menu", fig);
  if (open) { open.remove(); button.setAttribute("aria-expanded", "false"); return; }
  var id = $(".chart", fig).dataset.chart;
  var menu = el("div", { class: "save-menu", role: "menu" }, [
    ["svg", "Chart as SVG"], ["png", "Chart as PNG"], ["csv", "Data as CSV"],
  ].map(function (item) {
    return el("button", { type: "button", role: "menuitem", "data-format": item[0], text: item[1], onclick: function () {
      menu.remove();
      button.setAttribute("aria-expanded", "false");
      saveChart(id, item[0]);
    } });
  }));
  $(".panel-tools", fig).appendChild(menu);
  button.setAttribute("aria-expanded", "true");
}

function fileName(desc, ext) {
  var base = (state.page.run.name + " " + (desc.name || desc.id)).replace(/[^A-Za-z0-9._-]+/g, "-").replace(/^-+|-+$/g, "");
  return (base || "chart").slice(0, 120) + "." + ext;
}

// A download made in the page: a Blob (or a data: URL) and a link the page clicks.
function download(name, blobOrUrl) {
  var url = typeof blobOrUrl === "string" ? blobOrUrl : URL.createObjectURL(blobOrUrl);
  var a = el("a", { href: url, download: name, hidden: true });
  document.body.appendChild(a);
  a.click();
  a.remove();
  if (typeof blobOrUrl !== "string") setTimeout(function () { URL.revokeObjectURL(url); }, 10000);
}

function csvCell(v) {
  if (v === null || v === undefined) return "";
  var text = String(v);
  return /[",\n\r]/.test(text) ? '"' + text.replace(/"/g, '""') + '"' : text;
}

// The chart's data as drawn: one row per step, a column per series (and its smoothed values
// when smoothing is on); the heatmap's cells as they are.
function chartCSV(desc) {
  var lines = [];
  if (desc.kind === "heat") {
    lines.push(["from_step", "to_step", "reward", "samples", "share"]);
    desc.rows.forEach(function (r) { lines.push([r.s0, r.s1last, r.label, r.n, r.frac]); });
  } else {
    var names = seriesNames(desc), byStep = new Map();
    names.forEach(function (name, i) {
      var steps = desc.series[name][0], values = desc.series[name][1];
      var sm = state.smooth > 0 ? smoothedOf(desc, name) : null;
      steps.forEach(function (s, k) {
        if (!byStep.has(s)) byStep.set(s, new Array(names.length * (sm ? 2 : 1)).fill(null));
        var row = byStep.get(s);
        row[i] = values[k];
        if (sm) row[names.length + i] = sm[k];
      });
    });
    var head = ["step"].concat(names);
    if (state.smooth > 0) head = head.concat(names.map(function (n) { return n + " (smoothed " + state.smooth + ")"; }));
    lines.push(head);
    Array.from(byStep.keys()).sort(function (a, b) { return a - b; }).forEach(function (s) { lines.push([s].concat(byStep.get(s))); });
  }
  return lines.map(function (l) { return l.map(csvCell).join(","); }).join("\n") + "\n";
}

// SVG and PNG are drawn apart from the page, in the light theme with a title and a white
// background: a figure for a paper or a PR looks the same whatever theme the reader uses.
function saveChart(id, format) {
  var desc = ownGet(state.page.charts, id);
  if (!desc) return Promise.resolve();
  if (format === "csv") {
    download(fileName(desc, "csv"), new Blob([chartCSV(desc)], { type: "text/csv" }));
    return Promise.resolve();
  }
  var node = chartNode(id), width = Math.max(360, Math.round(node.getBoundingClientRect().width) || 600);
  var spec = chartSpec(desc, chartData(desc), LIGHT_CHARTS);
  spec.autosize = { type: "pad" };
  spec.width = width - 60;
  spec.signals = spec.signals.filter(function (s) { return s.name !== "width"; });
  spec.background = "#ffffff";
  spec.title = { text: desc.title, anchor: "start", fontSize: 13, fontWeight: 600, color: "#1f2430" };
  var box = el("div", { style: "position:absolute;left:-10000px;top:0;width:" + width + "px" });
  document.body.appendChild(box);
  var options = Object.assign(embedOptions("vega"), { renderer: format === "svg" ? "svg" : "canvas" });
  return vegaEmbed(box, spec, options).then(function (res) {
    var done = format === "svg"
      ? res.view.toSVG().then(function (svg) { download(fileName(desc, "svg"), new Blob([svg], { type: "image/svg+xml" })); })
      : res.view.toImageURL("png", 2).then(function (url) { download(fileName(desc, "png"), url); });
    return done.then(function () { res.view.finalize(); box.remove(); });
  }).catch(function (err) { box.remove(); toast("Could not save the chart: " + err); });
}

const LIGHT_CHARTS = {
  axis: { labelColor: "#5b6475", titleColor: "#5b6475", gridColor: "#eef0f4", domainColor: "#d5d9e0", tickColor: "#d5d9e0", labelFontSize: 11, titleFontWeight: 500 },
  legend: { labelColor: "#5b6475", titleColor: "#5b6475" },
  style: { cell: { stroke: null } },
};
