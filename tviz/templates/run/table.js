// The samples table: every trajectory the page keeps, a row each, sortable by any column and
// filtered by the search and the reward range. Its rows come from one compressed block (see
// tviz/render/table.py), read into columns when the table comes into view; only the rows in
// sight are in the DOM, so 100,000 rows scroll and sort as fast as 100.

const ROW_H = 28;
const table = { cols: null, order: null, key: "step", desc: true, loading: null, drawn: null, hits: null };

function tableNode() { return $("#samples-table"); }

function inflateRows() {
  var node = document.getElementById("sample-rows");
  if (!node || !node.textContent.trim()) return Promise.resolve("");
  var bin = atob(node.textContent.trim()), bytes = new Uint8Array(bin.length);
  for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate-raw"));
  return new Response(stream).text();
}

// The rows as columns: typed arrays for numbers (NaN for none), plain arrays for text.
function readRows(text) {
  var lines = text.split("\n"), n = 0, groups = [];
  lines.forEach(function (line) {
    if (!line) return;
    try {
      var g = JSON.parse(line);
      if (Array.isArray(g) && Array.isArray(g[3])) { groups.push(g); n += g[3].length; }
    } catch (err) { /* a damaged line: its rows are left out */ }
  });
  var c = { n: n, step: new Float64Array(n), group: new Float64Array(n), reward: new Float64Array(n),
    length: new Float64Array(n), logprob: new Float64Array(n), traj: new Array(n), prompt: new Array(n),
    output: new Array(n) };
  var k = 0;
  groups.forEach(function (g) {
    g[3].forEach(function (t) {
      if (!Array.isArray(t)) t = [];
      c.step[k] = num(g[0]) === null ? NaN : g[0];
      c.group[k] = num(g[1]) === null ? NaN : g[1];
      c.traj[k] = typeof t[0] === "number" || typeof t[0] === "string" ? t[0] : k;
      c.reward[k] = num(t[1]) === null ? NaN : t[1];
      c.length[k] = num(t[2]) === null ? NaN : t[2];
      c.logprob[k] = num(t[3]) === null ? NaN : t[3];
      c.prompt[k] = str(g[2]);
      c.output[k] = str(t[4]);
      k++;
    });
  });
  return c;
}

function loadTable() {
  if (!table.loading) {
    table.loading = inflateRows().then(function (text) {
      table.cols = readRows(text);
      tableNode().dataset.rows = String(table.cols.n);
      filterTable();
    });
  }
  return table.loading;
}

// The rows the search and reward range let through, in the chosen order.
function filterTable() {
  var c = table.cols;
  if (!c) return;
  var f = filterState(), keep = new Uint32Array(c.n), m = 0;
  var byReward = f.lo !== -Infinity || f.hi !== Infinity;
  for (var i = 0; i < c.n; i++) {
    var r = c.reward[i];
    if (byReward && !(r >= f.lo && r <= f.hi)) continue;
    if (f.q) {
      if (table.hits) { if (!table.hits.has(c.step[i] + ":" + c.group[i] + ":" + c.traj[i])) continue; }
      else if (!textMatches(c.prompt[i], f.q) && !textMatches(c.output[i], f.q)) continue;
    }
    keep[m++] = i;
  }
  table.order = keep.subarray(0, m);
  sortTable();
}

function sortTable() {
  var c = table.cols, key = table.key, sign = table.desc ? -1 : 1;
  var col = c[key], text = key === "prompt" || key === "output";
  table.order.sort(function (a, b) {
    var x = col[a], y = col[b];
    if (text) return sign * (x < y ? -1 : x > y ? 1 : 0) || a - b;
    var nx = x !== x, ny = y !== y;  // NaN: no value, always last
    if (nx || ny) return nx - ny || a - b;
    return sign * (x - y) || a - b;
  });
  $$(".table-head .th", tableNode()).forEach(function (th) {
    th.setAttribute("aria-sort", th.dataset.key === key ? (table.desc ? "descending" : "ascending") : "none");
  });
  var status = $("#table-status");
  status.textContent = "(" + fmt(table.order.length) + (table.order.length === c.n ? "" : " of " + fmt(c.n)) + " rows)";
  var body = $(".table-body", tableNode());
  $(".table-space", body).style.height = table.order.length * ROW_H + "px";
  table.drawn = null;
  drawRows();
}

function cellText(c, i, key) {
  if (key === "step" || key === "group") return fmt(c[key][i]);
  if (key === "reward" || key === "logprob") return isNaN(c[key][i]) ? "–" : fmtValue(c[key][i]);
  if (key === "length") return isNaN(c.length[i]) ? "–" : fmt(c.length[i]);
  return c[key][i];
}

const TABLE_KEYS = ["step", "group", "reward", "length", "logprob", "prompt", "output"];

// Only the rows in sight (and a few around) are in the DOM.
function drawRows() {
  var body = $(".table-body", tableNode()), space = $(".table-space", body), c = table.cols;
  var first = Math.max(0, Math.floor(body.scrollTop / ROW_H) - 6);
  var last = Math.min(table.order.length, Math.ceil((body.scrollTop + body.clientHeight) / ROW_H) + 6);
  if (table.drawn && table.drawn[0] === first && table.drawn[1] === last) return;
  table.drawn = [first, last];
  var rows = document.createDocumentFragment();
  for (var k = first; k < last; k++) {
    var i = table.order[k];
    var row = el("div", { class: "tr", role: "row", "data-row": i, style: "top:" + k * ROW_H + "px" });
    TABLE_KEYS.forEach(function (key) {
      var cell = el("span", { class: "td c-" + key, text: cellText(c, i, key) });
      if (key === "reward") cell.style.color = isNaN(c.reward[i]) ? "" : rewardColor(c.reward[i]);
      row.appendChild(cell);
    });
    rows.appendChild(row);
  }
  space.replaceChildren(rows);
}

function startTable() {
  var node = tableNode();
  if (!node) return;
  var body = $(".table-body", node);
  body.addEventListener("scroll", function () { requestAnimationFrame(drawRows); }, { passive: true });
  $$(".table-head .th", node).forEach(function (th) {
    th.addEventListener("click", function () {
      var key = th.dataset.key;
      table.desc = table.key === key ? !table.desc : key !== "prompt" && key !== "output";
      table.key = key;
      loadTable().then(function () { table.drawn = null; sortTable(); });
    });
  });
  body.addEventListener("click", function (e) {
    var row = e.target.closest(".tr");
    if (row) showSample(Number(row.dataset.row));
  });
  // Read the rows when the table comes near the viewport, not before.
  var seen = new IntersectionObserver(function (entries) {
    if (entries.some(function (e) { return e.isIntersecting; })) { seen.disconnect(); loadTable(); }
  }, { rootMargin: "600px 0px" });
  seen.observe(node);
}

// A row's full text: the trajectory with its prompt, heatmap and the prompt's history.
function showSample(i) {
  var c = table.cols, box = $("#sample-detail"), step = c.step[i], g = c.group[i], ti = c.traj[i];
  $$(".tr.selected", tableNode()).forEach(function (r) { r.classList.remove("selected"); });
  var row = $('.tr[data-row="' + i + '"]', tableNode());
  if (row) row.classList.add("selected");
  box.hidden = false;
  box.replaceChildren(el("p", { class: "muted", text: "Decompressing step " + fmt(step) + "…" }));
  return decodeStep(step).then(function (groups) {
    var group = groups.find(function (x) { return x.g === g; });
    var traj = group && group.t.find(function (t) { return t.i === ti; });
    if (!traj) { box.replaceChildren(el("p", { class: "muted", text: "This trajectory is not in the page." })); return; }
    var f = filterState();
    var head = el("div", { class: "detail-head" }, [
      el("b", { text: "Step " + fmt(step) + " · group " + fmt(g) + " · trajectory #" + ti }), " ", rewardBadge(traj.r),
      el("button", { type: "button", class: "link-button", text: "show in its step", onclick: function () { openStep(step, step); } }),
      el("button", { type: "button", class: "link-button", text: "close", onclick: function () { box.hidden = true; } }),
    ]);
    var parts = [head, el("div", { class: "label", text: "Prompt" }), group.p ? highlighted(group.p, f.q) : el("p", { class: "muted", text: "No prompt text was logged." })];
    if (group.imgPath || group.gt) parts.push(visionBlock(group));
    var history = historyBlock(group, step);
    if (history) parts.push(history);
    var body = trajBody(traj, f, group);
    parts.push(body);
    box.replaceChildren.apply(box, parts);
    var heat = $(".heat-toggle", body);
    if (heat) heat.click();
    box.scrollIntoView({ behavior: "smooth", block: "nearest" });
  });
}
