// The run page: charts drawn when scrolled into view, smoothing, log scale, replay, and the
// rollout browser whose per-step data is decompressed only when a step is opened.

var PAGE = readJSON("page-data");
var ROLL = readJSON("rollout-data") || { steps: [], notice: "" };
var STEPS = PAGE.steps;
var state = { smooth: 0, log: false, upto: null, drawn: Object.create(null) };
var decoded = new Map();      // step -> Promise of its groups
var stepNodes = new Map();    // step -> <details>
var rewardRange = rewardsSpan();
function rewardsSpan() {
  var lo = Infinity, hi = -Infinity;
  ROLL.steps.forEach(function (s) {
    if (s.worst !== null && s.worst < lo) lo = s.worst;
    if (s.best !== null && s.best > hi) hi = s.best;
  });
  return isFinite(lo) ? [lo, hi] : [0, 1];
}

// ---- header status --------------------------------------------------------------------------
showStatus();
function showStatus() {
  var run = PAGE.run;
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

// ---- charts ---------------------------------------------------------------------------------
function upto() { return state.upto === null ? Infinity : state.upto; }

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

function draw(id) {
  var node = $('.chart[data-chart="' + CSS.escape(id) + '"]');
  var desc = ownGet(PAGE.charts, id);
  if (!node || !desc) return Promise.resolve();
  var rows = chartRows(desc);
  if (!rows.length && desc.kind === "line") {
    node.textContent = "";
    node.appendChild(el("div", { class: "panel-empty", text: "no values up to this step" }));
  }
  var spec = withScale(ownGet(PAGE.specs, desc.spec), state.log && desc.kind === "line", chartValues(desc));
  spec.datasets = { rows: rows };
  if (desc.kind === "line") {
    spec.params.forEach(function (p) { if (p.name === "rawOpacity") p.value = state.smooth > 0 ? 0.25 : 1; });
  }
  var old = state.drawn[id];
  if (old) { old.finalize(); }
  node.dataset.drawn = "pending";
  var from = PAGE;
  return vegaEmbed(node, spec, embedOptions()).then(function (res) {
    state.drawn[id] = res.view;
    node.dataset.drawn = "yes";
    node.dataset.lastStep = lastStep(rows);
    if (PAGE !== from) refresh(id);  // the page was updated while this chart was drawn
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
  var desc = ownGet(PAGE.charts, id);
  if (!view) return Promise.resolve();
  var rows = chartRows(desc);
  view.data("rows", rows);
  if (desc.kind === "line") view.signal("rawOpacity", state.smooth > 0 ? 0.25 : 1);
  return view.runAsync().then(function () {
    var node = $('.chart[data-chart="' + CSS.escape(id) + '"]');
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
var observer = new IntersectionObserver(function (entries) {
  entries.forEach(function (entry) {
    if (!entry.isIntersecting) return;
    observer.unobserve(entry.target);
    draw(entry.target.dataset.chart);
  });
}, { rootMargin: "300px 0px" });
$$(".chart[data-chart]").forEach(function (node) { observer.observe(node); });

// Then draw the rest one at a time while the browser is idle, so scrolling finds them ready.
function drawIdle() {
  var next = $$(".chart[data-chart]").find(function (n) { return !n.dataset.drawn; });
  if (!next) return;
  observer.unobserve(next);
  draw(next.dataset.chart).then(function () { idle(drawIdle); });
}
var idle = window.requestIdleCallback || function (f) { return setTimeout(f, 50); };
setTimeout(function () { idle(drawIdle); }, 300);

function redrawAll() {
  Object.keys(state.drawn).forEach(function (id) { draw(id); });
}

// New rows for every drawn chart, the ones in sight first. Vega's expression interpreter
// takes ~40 ms a chart of 1,000 points: done at once, 34 charts of a long run would freeze
// the page for over a second. So a chart is only marked stale here, and caught up when it
// comes near the viewport or, one at a time, while the browser is idle.
var stale = new Map();  // chart id -> true: draw it anew (its spec changed), false: new rows
var catchingUp = false;
var staleObserver = new IntersectionObserver(function (entries) {
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
  stale.set(id, redo || stale.get(id) === true);
  var node = $('.chart[data-chart="' + CSS.escape(id) + '"]');
  if (node) { staleObserver.unobserve(node); staleObserver.observe(node); }
  if (!catchingUp) { catchingUp = true; idle(catchUpIdle); }
}
function catchUp(id) {
  if (!stale.has(id)) return Promise.resolve();
  var redo = stale.get(id);
  stale.delete(id);
  var node = $('.chart[data-chart="' + CSS.escape(id) + '"]');
  if (node) staleObserver.unobserve(node);
  return redo ? draw(id) : refresh(id);
}
function catchUpIdle() {
  var next = stale.keys().next();
  if (next.done) { catchingUp = false; return; }
  catchUp(next.value).then(function () { idle(catchUpIdle); });
}

// ---- toolbar --------------------------------------------------------------------------------
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

var replay = $("#replay");
var replayOut = $("#replay-value");
var replayBanner = null;
replay.max = Math.max(0, STEPS.length - 1);
replay.value = replay.max;
if (STEPS.length < 2) replay.disabled = true;
var replayFrame = 0;
function setReplay(index) {
  showReplay(index);
  cancelAnimationFrame(replayFrame);
  replayFrame = requestAnimationFrame(function () { refreshAll(); renderSteps(); });
}
function showReplay(index) {
  index = Number(index);
  var latest = index >= STEPS.length - 1;
  state.upto = latest ? null : STEPS[index];
  replayOut.textContent = latest ? "latest" : "step " + STEPS[index].toLocaleString("en-US");
  $("#replay-latest").hidden = latest;
  document.body.dataset.replay = latest ? "" : String(STEPS[index]);
  if (!latest && !replayBanner) {
    replayBanner = el("p", { class: "replay-banner", role: "status" });
    $("main").insertBefore(replayBanner, $("main").firstChild);
  }
  if (replayBanner) {
    if (latest) { replayBanner.remove(); replayBanner = null; }
    else replayBanner.textContent = "Replay: showing the run as it stood at step " + STEPS[index].toLocaleString("en-US") +
      " of " + STEPS[STEPS.length - 1].toLocaleString("en-US") + ".";
  }
}
replay.addEventListener("input", function () { setReplay(replay.value); });
$("#replay-latest").addEventListener("click", function (e) {
  e.preventDefault();
  replay.value = replay.max;
  setReplay(replay.max);
});

// ---- rollouts -------------------------------------------------------------------------------
var parsed = new Promise(function (resolve) {
  if (document.readyState !== "loading") resolve();
  else document.addEventListener("DOMContentLoaded", resolve);
});

function decodeStep(step) {
  if (decoded.has(step)) return decoded.get(step);
  var promise = parsed.then(function () { return decodeNow(step); });
  decoded.set(step, promise);
  return promise;
}

function decodeNow(step) {
  var node = document.getElementById("chunk-" + step);
  var promise;
  if (!node) {
    promise = Promise.resolve([]);
  } else {
    var bin = atob(node.textContent);
    var bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    // Groups come in the order the size budget keeps them; show them in group order.
    promise = new Response(stream).text().then(function (text) {
      var groups = JSON.parse(text);
      return (Array.isArray(groups) ? groups : []).map(cleanGroup)
        .sort(function (a, b) { return (Number(a.g) || 0) - (Number(b.g) || 0); });
    });
  }
  return promise;
}

// The build checks every field's type, but a page must not depend on that for its safety:
// a group or trajectory from an odd database is made well-formed here, once, as it is
// decoded. A list field that is not a list, or an object field that is not an object, moves
// to the extras table, where it shows as text.
function num(v) { return typeof v === "number" && isFinite(v) ? v : null; }
function str(v) { return typeof v === "string" ? v : (v === null || v === undefined ? "" : JSON.stringify(v)); }
function extrasOf(item) {
  var x = ownGet(item, "x");
  if (x === undefined || x === null) return {};
  return isObject(x) ? x : { extras: x };
}
function keepList(item, key, x, check) {
  var v = ownGet(item, key);
  if (v === undefined || v === null) { delete item[key]; return; }
  if (!Array.isArray(v) || (check && !check(v))) { x[key] = v; delete item[key]; }
}
function point(v) { return Array.isArray(v) && v.length === 2 && num(v[0]) !== null && num(v[1]) !== null; }
function cleanTraj(t, i) {
  if (!isObject(t)) t = { o: str(t) };
  var x = extrasOf(t);
  t.i = typeof t.i === "number" || typeof t.i === "string" ? t.i : i;
  t.r = num(t.r);
  t.o = str(ownGet(t, "o"));
  keepList(t, "turns", x);
  keepList(t, "lp", x);
  if (t.lp) t.lp = t.lp.map(num);
  keepList(t, "sr", x);
  keepList(t, "tt", x, function (tt) {
    return t.lp && tt.length === t.lp.length && tt.every(function (w) { return typeof w === "string"; });
  });
  keepList(t, "pred", x, point);
  if (own(t, "d") && num(t.d) === null) { if (t.d !== null) x.d = t.d; delete t.d; }
  if (own(t, "nt") && num(t.nt) === null) delete t.nt;
  if (Object.keys(x).length) t.x = x; else delete t.x;
  return t;
}
function cleanGroup(g, i) {
  if (!isObject(g)) g = { p: str(g) };
  var x = extrasOf(g);
  g.g = typeof g.g === "number" ? g.g : i;
  g.p = str(ownGet(g, "p"));
  g.best = num(g.best);
  g.mean = num(g.mean);
  var ts = ownGet(g, "t");
  if (ts !== undefined && !Array.isArray(ts)) x.trajectories = ts;
  g.t = (Array.isArray(ts) ? ts : []).map(cleanTraj);
  keepList(g, "gt", x, point);
  ["img", "imgPath", "imgNote", "place"].forEach(function (k) {
    if (own(g, k) && typeof g[k] !== "string") { if (g[k] !== null) x[k] = g[k]; delete g[k]; }
  });
  if (g.img && g.img.indexOf("data:image/") !== 0) { x.img = g.img; delete g.img; }  // never a URL
  if (Object.keys(x).length) g.x = x; else delete g.x;
  return g;
}

function rewardColor(r) {
  if (r === null || r === undefined) return "#c3c9d4";
  var t = rewardRange[1] > rewardRange[0] ? (r - rewardRange[0]) / (rewardRange[1] - rewardRange[0]) : 1;
  t = Math.max(0, Math.min(1, t));
  // red (low) -> amber -> green (high), muted so text on it stays readable
  var hue = Math.round(t * 140);
  return "hsl(" + hue + ", 55%, 46%)";
}
function rewardBadge(r) {
  return el("span", { class: "reward", style: "background:" + rewardColor(r) + ";color:#fff", text: fmt(r, 3) });
}

function filterState() {
  var q = $("#search").value.trim().toLowerCase();
  var lo = $("#reward-min").value, hi = $("#reward-max").value;
  return { q: q, lo: lo === "" ? -Infinity : Number(lo), hi: hi === "" ? Infinity : Number(hi) };
}
function trajVisible(t, f) { return t.r === null ? f.lo === -Infinity && f.hi === Infinity : t.r >= f.lo && t.r <= f.hi; }
function textMatches(text, q) { return !q || (text || "").toLowerCase().indexOf(q) >= 0; }
function groupMatches(g, f) {
  var byReward = f.lo !== -Infinity || f.hi !== Infinity;  // else show groups without samples
  if (byReward && !g.t.some(function (t) { return trajVisible(t, f); })) return false;
  if (!f.q) return true;
  return textMatches(g.p, f.q) || g.t.some(function (t) {
    return textMatches(t.o, f.q) || (t.turns && textMatches(JSON.stringify(t.turns), f.q));
  });
}

// Text with the search term marked, built from text nodes (never parsed as HTML).
function highlighted(text, q, tag, cls) {
  var node = el(tag || "pre", { class: cls || "text" });
  text = text || "";
  if (!q) { node.textContent = text; return node; }
  var lower = text.toLowerCase(), pos = 0, at;
  while ((at = lower.indexOf(q, pos)) >= 0) {
    node.appendChild(document.createTextNode(text.slice(pos, at)));
    node.appendChild(el("mark", { text: text.slice(at, at + q.length) }));
    pos = at + q.length;
  }
  node.appendChild(document.createTextNode(text.slice(pos)));
  return node;
}

var PAGE_SIZE = 40;
var shownSteps = PAGE_SIZE;
var searchMatches = null;  // null, or Set of steps matching the current search
var rerunFilters = null;  // the search, run again (new steps may match)

function visibleSteps() {
  var limit = upto();
  return ROLL.steps.filter(function (s) {
    return s.step <= limit && (searchMatches === null || searchMatches.has(s.step));
  });
}

// One fixed-width cell per figure (see .step > summary in the CSS), so the columns line up
// from step to step whatever the numbers; the optional cells are always there, maybe empty.
function stepSummary(s) {
  function stat(cls, label, value, after) {
    return el("span", { class: "stat " + cls }, [label, el("b", { text: value }), after]);
  }
  var kept = s.kept < s.groups
    ? (s.kept ? s.kept + " of " + s.groups + " groups in this page" : "rollouts left out of this page")
    : "";
  return el("summary", {}, [
    el("span", { class: "step-title", text: "Step " + s.step.toLocaleString("en-US") }),
    stat("stat-groups", "", fmt(s.groups), " groups"),
    stat("stat-samples", "", fmt(s.traj), " samples"),
    stat("stat-best", "best ", fmt(s.best, 3)),
    stat("stat-mean", "mean ", fmt(s.mean, 3)),
    stat("stat-worst", "worst ", fmt(s.worst, 3)),
    el("span", { class: "stat stat-flat muted", text: s.flat ? s.flat + " without learning signal" : "" }),
    el("span", { class: "kept", text: kept }),
  ]);
}

function renderSteps() {
  var box = $("#steps");
  if (!box) return;
  var list = visibleSteps();
  var wanted = list.slice(0, shownSteps);
  var keep = new Set(wanted.map(function (s) { return s.step; }));
  stepNodes.forEach(function (node, step) {
    if (!keep.has(step)) { node.remove(); stepNodes.delete(step); }
  });
  var prev = null;
  wanted.forEach(function (s) {
    var node = stepNodes.get(s.step);
    if (!node) {
      node = el("details", { class: "step", "data-step": s.step }, [stepSummary(s), el("div", { class: "step-body" })]);
      node.addEventListener("toggle", function () { if (node.open) fillStep(node, stepOf(node)); });
      stepNodes.set(s.step, node);
    }
    var expected = prev ? prev.nextSibling : box.firstChild;
    if (expected !== node) box.insertBefore(node, expected);
    prev = node;
  });
  var more = $("#more-steps");
  more.hidden = list.length <= wanted.length;
  more.textContent = "Show more steps (" + (list.length - wanted.length).toLocaleString("en-US") + " older)";
  if (!list.length) {
    if (!$("#no-steps")) box.appendChild(el("p", { id: "no-steps", class: "muted", text: "No steps match." }));
  } else if ($("#no-steps")) {
    $("#no-steps").remove();
  }
}

function stepOf(node) {
  var step = Number(node.dataset.step);
  return ROLL.steps.find(function (s) { return s.step === step; });
}

// Filled in one go once decoded: a step refilled with new data does not collapse, then grow,
// under the reader's eyes.
function fillStep(node, s) {
  var body = node.querySelector(".step-body");
  if (!body.firstChild) body.appendChild(el("p", { class: "muted", text: "Decompressing…" }));
  return decodeStep(s.step).then(function (groups) {
    var f = filterState(), out = document.createDocumentFragment();
    if (!groups.length) {
      out.appendChild(el("p", { class: "muted", text: "This step's rollouts were left out of the page to keep it within its size budget." }));
      body.replaceChildren(out);
      return;
    }
    if (s.kept < s.groups) {
      out.appendChild(el("p", { class: "hidden-note", text: "Showing " + s.kept + " of " + s.groups + " groups (best, worst and mixed ones): the page's size budget left the rest out." }));
    }
    var shown = 0;
    groups.forEach(function (g) {
      if (!groupMatches(g, f)) return;
      shown++;
      out.appendChild(groupCard(g, f));
    });
    if (!shown) out.appendChild(el("p", { class: "muted", text: "No group of this step matches the search or reward filter." }));
    body.replaceChildren(out);
    node.dataset.filled = "yes";
  });
}

function groupCard(g, f) {
  var card = el("div", { class: "group", "data-group": g.g });
  var bars = el("div", { class: "bars", title: "one bar per trajectory, height = reward" });
  g.t.forEach(function (t) {
    var h = t.r === null ? 0 : (rewardRange[1] > rewardRange[0] ? (t.r - rewardRange[0]) / (rewardRange[1] - rewardRange[0]) : 1);
    bars.appendChild(el("span", { style: "height:" + Math.max(8, Math.round(h * 100)) + "%;background:" + rewardColor(t.r), title: "reward " + fmt(t.r, 4) }));
  });
  var idLabel = el("span", { class: "group-id", text: "Group " + g.g });
  if (g.flat) idLabel.appendChild(el("span", { class: "flat-badge", title: "every sample got the same reward: no learning signal for GRPO", text: "no signal" }));
  var head = el("div", { class: "group-head", role: "button", tabindex: "0", "aria-expanded": "false" }, [
    idLabel,
    el("span", { class: "group-rewards" }, ["best ", el("b", { text: fmt(g.best, 3) }), " · mean ", el("b", { text: fmt(g.mean, 3) })]),
    bars,
    g.p ? el("span", { class: "prompt-start", text: g.p.slice(0, 300).replace(/\s+/g, " ") })
      : el("span", { class: "prompt-start muted", text: "(no prompt text logged)" }),
  ]);
  var body = null;
  function toggle() {
    if (body) { body.remove(); body = null; head.setAttribute("aria-expanded", "false"); return; }
    body = groupBody(g, f);
    card.appendChild(body);
    head.setAttribute("aria-expanded", "true");
  }
  head.addEventListener("click", toggle);
  head.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); toggle(); } });
  card.appendChild(head);
  return card;
}

function groupBody(g, f) {
  var body = el("div", { class: "group-body" });
  body.appendChild(el("div", { class: "label", text: "Prompt" }));
  if (g.p) body.appendChild(highlighted(g.p, f.q));
  else body.appendChild(el("p", { class: "muted no-text", text: "No prompt text was logged for this group." }));
  if (g.imgPath || g.gt) body.appendChild(visionBlock(g));
  if (g.x) body.appendChild(extrasBlock(g.x));
  body.appendChild(el("div", { class: "label", text: "Trajectories, best first" }));
  var hidden = 0;
  g.t.forEach(function (t) {
    if (!trajVisible(t, f)) { hidden++; return; }
    body.appendChild(trajRow(t, f, g));
  });
  if (hidden) body.appendChild(el("p", { class: "hidden-note", text: hidden + " trajectories hidden by the reward filter" }));
  return body;
}

function trajRow(t, f, g) {
  var row = el("div", { class: "traj", "data-traj": t.i });
  var len = t.nt !== undefined ? t.nt + " tok" : (t.o || "").length + " chars";
  var preview = t.o || (t.turns ? "(" + t.turns.length + " turns)" : "");
  var geo = groupHasGeo(g);
  var head = el("div", { class: "traj-head" + (geo ? " with-distance" : ""), role: "button", tabindex: "0", "aria-expanded": "false" }, [
    rewardBadge(t.r),
    el("span", { class: "muted", text: "#" + t.i }),
    el("span", { class: "muted", text: len }),
    geo ? el("span", { class: "distance", title: "distance from the true location", text: t.d !== undefined ? fmtKm(t.d) : "–" }) : null,
    el("span", { class: "traj-preview", text: preview.slice(0, 300).replace(/\s+/g, " ") }),
  ]);
  var body = null;
  function toggle() {
    if (body) { body.remove(); body = null; head.setAttribute("aria-expanded", "false"); return; }
    body = trajBody(t, f, g);
    row.appendChild(body);
    head.setAttribute("aria-expanded", "true");
  }
  head.addEventListener("click", toggle);
  head.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); toggle(); } });
  row.appendChild(head);
  return row;
}

function trajBody(t, f, g) {
  var body = el("div", { class: "traj-body" });
  if (t.turns && t.turns.length) {
    body.appendChild(el("div", { class: "label", text: "Turns" }));
    t.turns.forEach(function (turn, i) { body.appendChild(turnBlock(turn, i, f)); });
  }
  if (t.o || !t.turns) {
    body.appendChild(el("div", { class: "label", text: "Output" }));
    var text = highlighted(t.o, f.q);
    body.appendChild(text);
  }
  var tools = el("div", { class: "traj-tools" });
  if (t.lp && t.lp.length) {
    var heat = null;
    var button = el("button", { type: "button", class: "button heat-toggle", "aria-pressed": "false", text: t.tt ? "Tokens by logprob" : "Token logprob heatmap" });
    button.addEventListener("click", function () {
      if (heat) { heat.remove(); heat = null; button.setAttribute("aria-pressed", "false"); return; }
      heat = heatmap(t.lp, t.tt);
      tools.after(heat);
      button.setAttribute("aria-pressed", "true");
    });
    tools.appendChild(button);
    var finite = t.lp.filter(function (v) { return v !== null; });
    var mean = finite.reduce(function (a, b) { return a + b; }, 0) / Math.max(1, finite.length);
    tools.appendChild(el("span", { class: "muted", text: "mean logprob " + fmt(mean, 3) + " · " + t.lp.length + " tokens" }));
  }
  if (t.sr && t.sr.length > 1) {  // one step's reward is the trajectory's reward
    var chips = el("span", { class: "chips", title: "reward of each step of the episode" });
    t.sr.forEach(function (r, i) { chips.appendChild(el("span", { text: "step " + (i + 1) + ": " + fmt(r, 4) })); });
    tools.appendChild(el("span", { class: "muted", text: "Reward by step:" }));
    tools.appendChild(chips);
  }
  if (tools.childNodes.length) body.appendChild(tools);
  if (t.pred || t.d !== undefined) {
    var geo = "predicted " + (t.pred ? fmt(t.pred[0], 5) + ", " + fmt(t.pred[1], 5) : "–");
    if (g.gt) geo += " · true " + fmt(g.gt[0], 5) + ", " + fmt(g.gt[1], 5);
    if (t.d !== undefined) geo += " · distance " + fmtKm(t.d);
    body.appendChild(el("div", { class: "geo", text: geo }));
  }
  if (t.x) body.appendChild(extrasBlock(t.x));
  return body;
}

// A turn of a multi-turn episode: {role, content} (or text) as chat, tinker-cookbook's
// {observation_text, action_text, reward, metrics, logs, ...}, or anything else as JSON.
var TURN_TEXTS = [["observation_text", "observation"], ["action_text", "action"]];
function turnBlock(turn, i, f) {
  var box = el("div", { class: "turn" });
  if (!isObject(turn)) {
    box.appendChild(el("div", { class: "turn-role", text: "turn " + (i + 1) }));
    box.appendChild(highlighted(typeof turn === "string" ? turn : JSON.stringify(turn, null, 2), f.q));
    return box;
  }
  var role = ownGet(turn, "role");
  if (role === undefined) role = ownGet(turn, "speaker");
  var reward = ownGet(turn, "reward");
  box.appendChild(el("div", { class: "turn-role", text: (role === undefined || role === null ? "turn " + (i + 1) : str(role)) +
    (reward !== undefined && reward !== null ? " · reward " + fmt(reward, 4) : "") }));
  var content = ownGet(turn, "content");
  if (content === undefined || content === null) content = ownGet(turn, "text");
  var shown = ["role", "speaker", "reward", "content", "text"];
  var rest = Object.create(null);  // a "__proto__" key stays a key
  if (content !== undefined && content !== null) {
    box.appendChild(highlighted(typeof content === "string" ? content : JSON.stringify(content, null, 2), f.q));
  } else if (TURN_TEXTS.some(function (p) { return own(turn, p[0]); })) {
    TURN_TEXTS.forEach(function (p) {
      var text = ownGet(turn, p[0]);
      if (text === undefined || text === null) return;
      box.appendChild(el("div", { class: "label", text: p[1] }));
      box.appendChild(highlighted(str(text), f.q));
    });
    shown = shown.concat(["observation_text", "action_text", "turn_idx"]);
  } else {
    Object.keys(turn).forEach(function (k) { if (shown.indexOf(k) < 0) rest[k] = turn[k]; });
    box.appendChild(highlighted(JSON.stringify(rest, null, 2), f.q));
    return box;
  }
  Object.keys(turn).forEach(function (k) { if (shown.indexOf(k) < 0) rest[k] = turn[k]; });
  if (Object.keys(rest).length) box.appendChild(extrasBlock(rest));
  return box;
}

// Colour of a token by its probability under the sampler: confident ones pale blue, unlikely
// ones saturated red. Lighter for text backgrounds, so the token stays readable on it.
function lpColor(lp, forText) {
  if (lp === null || lp === undefined) return forText ? "transparent" : "#e3e6ec";
  var p = Math.exp(Math.min(0, lp));
  var light = forText ? 62 + p * 32 : 52 + p * 38;
  return "hsl(" + Math.round(p * 210) + ", " + Math.round(75 - p * 40) + "%, " + Math.round(light) + "%)";
}
function lpTitle(i, lp) {
  return "token " + i + ": logprob " + fmt(lp, 4) + (lp === null ? "" : " (p = " + fmt(Math.exp(lp), 3) + ")");
}

var HEAT_ROW = 50;  // cells per row of the fallback grid

// The sampled tokens coloured by logprob: the token texts when the run logged them
// (extras "token_texts"), else one cell per token in rows of HEAT_ROW.
function heatmap(lps, texts) {
  var wrap = el("div", { class: "heat-wrap" });
  if (texts) {
    var text = el("div", { class: "token-text", "aria-label": "sampled tokens coloured by logprob" });
    texts.forEach(function (tok, i) {
      text.appendChild(el("span", { style: "background:" + lpColor(lps[i], true), title: lpTitle(i, lps[i]), text: tok }));
    });
    wrap.appendChild(text);
  } else {
    var grid = el("div", { class: "heatmap", role: "img", "aria-label": "token logprobs" });
    for (var start = 0; start < lps.length; start += HEAT_ROW) {
      var row = el("div", { class: "heat-row" }, [el("span", { class: "heat-index", text: String(start) })]);
      lps.slice(start, start + HEAT_ROW).forEach(function (lp, k) {
        row.appendChild(el("span", { class: "cell", style: "background:" + lpColor(lp, false), title: lpTitle(start + k, lp) }));
      });
      grid.appendChild(row);
    }
    wrap.appendChild(grid);
  }
  var stops = [0, -0.1, -0.5, -1, -2, -4].map(function (lp) {
    return el("span", { class: "legend-swatch", style: "background:" + lpColor(lp, Boolean(texts)), title: "logprob " + lp }, [String(lp)]);
  });
  wrap.appendChild(el("div", { class: "heat-legend" }, [
    el("span", { text: "logprob:" }),
  ].concat(stops).concat([
    el("span", { class: "legend-swatch", style: "background:" + lpColor(null, false), text: "none" }),
    el("span", { text: texts
      ? "Each sampled token, coloured by how likely the sampler found it; hover a token for its logprob."
      : "One cell per sampled token, in order (" + HEAT_ROW + " a row; the number is the first token's index); hover a cell for its logprob." }),
  ])));
  return wrap;
}

function extrasBlock(x) {
  var table = el("table", { class: "kv" });
  if (!isObject(x)) x = { extras: x };
  Object.keys(x).forEach(function (k) {
    var v = x[k];
    table.appendChild(el("tr", {}, [el("th", { text: k }), el("td", { text: typeof v === "string" ? v : JSON.stringify(v) })]));
  });
  return table;
}

function groupHasGeo(g) {
  return Boolean(g.gt) || g.t.some(function (t) { return t.pred || t.d !== undefined; });
}
function fmtKm(d) {
  if (d === null || d === undefined || !isFinite(d)) return "–";
  return (d < 10 ? d.toFixed(1) : Math.round(d).toLocaleString("en-US")) + " km";
}

function visionBlock(g) {
  var box = el("div", { class: "vision" });
  if (g.img) box.appendChild(el("img", { src: g.img, alt: "rollout image" }));
  else if (g.imgPath) box.appendChild(el("p", { class: "muted", text: (g.imgNote || "image not embedded") + ": " + g.imgPath }));
  var side = el("div", { class: "geo" });
  if (g.gt) {
    side.appendChild(el("div", { text: "true location " + fmt(g.gt[0], 5) + ", " + fmt(g.gt[1], 5) + (g.place ? " (" + g.place + ")" : "") }));
    var dists = g.t.map(function (t) { return t.d; }).filter(function (d) { return typeof d === "number" && isFinite(d); })
      .sort(function (a, b) { return a - b; });
    if (dists.length) {
      var median = dists.length % 2 ? dists[(dists.length - 1) / 2] : (dists[dists.length / 2 - 1] + dists[dists.length / 2]) / 2;
      side.appendChild(el("div", { class: "muted", text: dists.length + " predictions: closest " + fmtKm(dists[0]) +
        ", median " + fmtKm(median) + ", farthest " + fmtKm(dists[dists.length - 1]) }));
    }
    side.appendChild(miniMap(g));
    side.appendChild(el("div", { class: "map-legend" }, [
      el("span", { class: "map-key truth" }), "true location",
      el("span", { class: "map-key pred" }), "a trajectory's prediction, coloured by its reward; hover for its distance",
    ]));
  } else if (g.place) {
    side.appendChild(el("div", { text: g.place }));
  }
  box.appendChild(side);
  return box;
}

// Truth and every prediction on a plain lat/lon grid (no map tiles: the page loads nothing),
// zoomed to fit them, with degree labels and a scale bar.
function miniMap(g) {
  var NS = "http://www.w3.org/2000/svg", W = 360, H = 220, PAD = 18;
  function svg(tag, attrs, text) {
    var n = document.createElementNS(NS, tag);
    Object.keys(attrs).forEach(function (k) { n.setAttribute(k, attrs[k]); });
    if (text !== undefined) n.textContent = text;
    return n;
  }
  function wrapLon(lon) { return ((lon + 540) % 360) - 180; }
  var lat0 = g.gt[0], lon0 = g.gt[1];
  // Longitudes relative to the truth, so predictions across the antimeridian stay near it.
  var pts = g.t.filter(function (t) { return t.pred; }).map(function (t) {
    return { t: t, lat: t.pred[0], dlon: wrapLon(t.pred[1] - lon0) };
  });
  var lats = [lat0].concat(pts.map(function (p) { return p.lat; }));
  var dlons = [0].concat(pts.map(function (p) { return p.dlon; }));
  var midLat = (Math.min.apply(null, lats) + Math.max.apply(null, lats)) / 2;
  var k = Math.max(0.2, Math.cos(midLat * Math.PI / 180));  // x degrees shrink with latitude
  var spanX = Math.max((Math.max.apply(null, dlons) - Math.min.apply(null, dlons)) * k, 0.5);
  var spanY = Math.max(Math.max.apply(null, lats) - Math.min.apply(null, lats), 0.5);
  var scale = Math.min((W - 2 * PAD) / spanX, (H - 2 * PAD) / spanY) / 1.15;  // px per degree
  scale = Math.max(scale, Math.min(W / 360, H / 180));
  var cx = (Math.max.apply(null, dlons) + Math.min.apply(null, dlons)) / 2 * k;
  var cy = midLat;
  function xy(lat, dlon) { return [W / 2 + (dlon * k - cx) * scale, H / 2 - (lat - cy) * scale]; }
  function unxy(x, y) { return [cy - (y - H / 2) / scale, (cx + (x - W / 2) / scale) / k]; }
  var root = svg("svg", { width: W, height: H, viewBox: "0 0 " + W + " " + H, class: "map", role: "img", "aria-label": "predicted and true locations" });
  // Grid lines every `step` degrees, about four across.
  var nice = [0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 45, 90];
  var step = nice.find(function (s) { return Math.max(W / scale / k, H / scale) / s <= 6; }) || 90;
  var topLeft = unxy(0, 0), bottomRight = unxy(W, H);
  function deg(v, pos, neg) {
    var a = Math.abs(v);
    return (Number.isInteger(a) ? a : Number(a.toFixed(1))) + "°" + (v > 0 ? pos : v < 0 ? neg : "");
  }
  for (var lon = Math.ceil((topLeft[1] + lon0) / step) * step; lon <= bottomRight[1] + lon0; lon += step) {
    var x = xy(0, lon - lon0)[0];
    root.appendChild(svg("line", { x1: x, x2: x, y1: 0, y2: H, stroke: "#dde3ec" }));
    if (x < W - 36) root.appendChild(svg("text", { x: x + 2, y: H - 4, class: "map-label" }, deg(wrapLon(lon), "E", "W")));
  }
  for (var lat = Math.ceil(bottomRight[0] / step) * step; lat <= topLeft[0]; lat += step) {
    var y = xy(lat, 0)[1];
    root.appendChild(svg("line", { x1: 0, x2: W, y1: y, y2: y, stroke: "#dde3ec" }));
    if (y > 12) root.appendChild(svg("text", { x: 3, y: y - 2, class: "map-label" }, deg(lat, "N", "S")));
  }
  // Scale bar: the roundest distance about 70 px long.
  var kmPerPx = 111.32 * k / scale;
  var bar = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000].filter(function (d) { return d / kmPerPx <= 90; }).pop();
  if (bar) {
    var len = bar / kmPerPx;
    root.appendChild(svg("path", { d: "M" + (W - 10 - len) + "," + (H - 14) + "v4h" + len + "v-4", fill: "none", stroke: "#5b6475" }));
    root.appendChild(svg("text", { x: W - 10 - len / 2, y: H - 16, class: "map-label", "text-anchor": "middle" }, bar.toLocaleString("en-US") + " km"));
  }
  var truth = xy(lat0, 0);
  pts.forEach(function (p) {
    var q = xy(p.lat, p.dlon);
    root.appendChild(svg("line", { x1: truth[0], y1: truth[1], x2: q[0], y2: q[1], stroke: rewardColor(p.t.r), "stroke-opacity": 0.55, "stroke-width": 1 }));
  });
  pts.slice().reverse().forEach(function (p) {  // dots above the lines, the best one on top
    var q = xy(p.lat, p.dlon);
    var dot = svg("circle", { cx: q[0], cy: q[1], r: 4, fill: rewardColor(p.t.r), stroke: "#fff", "stroke-width": 1, class: "pred", "data-traj": p.t.i });
    dot.appendChild(svg("title", {}, "#" + p.t.i + " · reward " + fmt(p.t.r, 3) + (p.t.d !== undefined ? " · " + fmtKm(p.t.d) : "")));
    root.appendChild(dot);
  });
  var ring = svg("circle", { cx: truth[0], cy: truth[1], r: 6.5, fill: "none", stroke: "#1f2430", "stroke-width": 2, class: "truth" });
  ring.appendChild(svg("title", {}, "true location" + (g.place ? ": " + g.place : "")));
  root.appendChild(ring);
  root.appendChild(svg("circle", { cx: truth[0], cy: truth[1], r: 1.5, fill: "#1f2430" }));
  return root;
}

// Open a step's rollouts (from a chart click). A step without rollouts in the page opens the
// nearest earlier one that has them.
function openStep(step, lastStep) {
  var list = visibleSteps();
  if (!list.length) return;
  var target = null;
  for (var i = 0; i < list.length; i++) {  // newest first
    var s = list[i].step;
    if (s <= (lastStep !== null && lastStep !== undefined ? lastStep : step)) { target = list[i]; break; }
  }
  if (!target) target = list[list.length - 1];
  if (target.step !== step && lastStep === null) toast("Step " + step + " has no rollouts here; showing step " + target.step + ".");
  var index = list.indexOf(target);
  if (index >= shownSteps) { shownSteps = index + PAGE_SIZE; renderSteps(); }
  var node = stepNodes.get(target.step);
  if (!node) return;
  node.open = true;
  node.scrollIntoView({ behavior: "smooth", block: "start" });
}

if ($("#steps")) {
  renderSteps();
  $("#more-steps").addEventListener("click", function () { shownSteps += PAGE_SIZE * 5; renderSteps(); });
  var searchTimer = 0, searchRun = 0;
  // `only`: the steps to refill if open (new data); all of them when the filters changed.
  function applyFilters(only) {
    var f = filterState(), run = ++searchRun, status = $("#search-status");
    var refill = function () {
      stepNodes.forEach(function (node, step) {
        if (node.open && (!only || only.has(step))) refillStep(node);
      });
    };
    if (!f.q && f.lo === -Infinity && f.hi === Infinity) {
      searchMatches = null;
      status.textContent = "";
      renderSteps(); refill();
      return;
    }
    status.textContent = "Searching…";
    // Searching needs every step's text: decompress them all (once; they stay decoded).
    var kept = ROLL.steps.filter(function (s) { return s.kept > 0; });
    Promise.all(kept.map(function (s) { return decodeStep(s.step).then(function (g) { return [s.step, g]; }); }))
      .then(function (pairs) {
        if (run !== searchRun) return;
        var matches = new Set(), groups = 0;
        pairs.forEach(function (pair) {
          var n = pair[1].filter(function (g) { return groupMatches(g, f); }).length;
          if (n) { matches.add(pair[0]); groups += n; }
        });
        searchMatches = matches;
        status.textContent = groups + " groups in " + matches.size + " steps match";
        renderSteps(); refill();
      });
  }
  rerunFilters = applyFilters;
  function later() { clearTimeout(searchTimer); searchTimer = setTimeout(function () { applyFilters(); }, 250); }
  $("#search").addEventListener("input", later);
  $("#reward-min").addEventListener("input", later);
  $("#reward-max").addEventListener("input", later);
}
// ---- live update (tviz watch) ---------------------------------------------------------------
// `tviz watch` serves this page with a small script that, when the run gained data, fetches the
// rebuilt page and calls this with it parsed into an inert document, all but its compressed
// step chunks, which come last: `blocks` is a promise of their texts by id (without it, they
// are read from `doc`), so the header and charts need not wait for megabytes of rollouts.
// Everything is updated in place (a reload would restart Vega and blank the charts for a
// second): the header, each chart's data through its Vega view (zoom stays), the replay
// slider, the rollouts (open steps, groups and trajectories stay open), the notices. False
// when the new page is shaped otherwise (other charts, rollouts appearing): the script then
// reloads it. From file:// this is never called.
window.tvizUpdate = function (doc, blocks) {
  var page = JSON.parse(doc.getElementById("page-data").textContent);
  var roll = JSON.parse(doc.getElementById("rollout-data").textContent);
  if (Object.keys(page.charts).join("\n") !== Object.keys(PAGE.charts).join("\n")) return false;
  if (!doc.getElementById("rollouts") !== !$("#rollouts")) return false;
  var old = PAGE;
  PAGE = page;
  STEPS = page.steps;
  // Header, config, other values: server-rendered text, swapped where it changed.
  [".run-name", ".page-header .facts", "section.config", "section.notes", "footer.provenance"]
    .forEach(function (sel) { swap(sel, doc); });
  showStatus();
  $$("figure.panel[data-panel]").forEach(function (fig) {
    var other = doc.querySelector('figure.panel[data-panel="' + CSS.escape(fig.dataset.panel) + '"]');
    swapChild(fig, other, ".panel-note");
  });
  // The replay slider: a reader at the newest step follows the new ones.
  var latest = state.upto === null, index = STEPS.length - 1;
  if (!latest) {
    while (index > 0 && STEPS[index] > state.upto) index--;
  }
  replay.max = Math.max(0, STEPS.length - 1);
  replay.disabled = STEPS.length < 2;
  replay.value = String(Math.max(0, index));
  showReplay(replay.value);
  Object.keys(state.drawn).forEach(function (id) {
    var desc = PAGE.charts[id], before = old.charts[id];
    var node = $('.chart[data-chart="' + CSS.escape(id) + '"]');
    var redo = desc.spec !== before.spec || Boolean(node && $(".panel-empty", node)) ||
      (state.log && desc.kind === "line" && positive(desc) !== positive(before));
    refreshLater(id, redo);
  });
  if (!$("#rollouts")) return true;
  return Promise.resolve(blocks || chunksOf(doc)).then(function (chunks) {
    updateRollouts(doc, roll, chunks);
    return true;
  });
};

function positive(desc) {
  return chartValues(desc).every(function (v) { return v === null || v > 0; });
}

// Replace the element `sel` finds by the new page's, if that differs; <details> it holds stay
// open or closed as the reader left them (when the new one has as many).
function swap(sel, doc) {
  var mine = $(sel), theirs = doc.querySelector(sel);
  if (mine && theirs && mine.outerHTML === theirs.outerHTML) return;
  if (!theirs) { if (mine) mine.remove(); return; }
  var fresh = document.importNode(theirs, true);
  if (!mine) { $("main").appendChild(fresh); return; }
  var was = $$("details", mine), now = $$("details", fresh);
  if (was.length === now.length) now.forEach(function (d, i) { d.open = was[i].open; });
  mine.replaceWith(fresh);
}

// Like swap, for the child `sel` of `parent` (the new page's is found in `other`).
function swapChild(parent, other, sel) {
  var mine = $(sel, parent), theirs = other && $(sel, other);
  if (mine && theirs) { if (mine.textContent !== theirs.textContent) mine.textContent = theirs.textContent; }
  else if (theirs) parent.appendChild(document.importNode(theirs, true));
  else if (mine) mine.remove();
}

function chunksOf(doc) {
  var blocks = new Map();
  $$('script[id^="chunk-"]', doc).forEach(function (n) { blocks.set(n.id, n.textContent); });
  return blocks;
}

function updateRollouts(doc, roll, blocks) {
  var before = new Map(ROLL.steps.map(function (s) { return [s.step, JSON.stringify(s)]; }));
  ROLL = roll;
  rewardRange = rewardsSpan();
  var section = $("#rollouts"), theirs = doc.getElementById("rollouts");
  var h2 = $("h2", section), newH2 = $("h2", theirs);
  if (h2 && newH2 && h2.outerHTML !== newH2.outerHTML) h2.replaceWith(document.importNode(newH2, true));
  var notice = $("#rollouts > .notice"), newNotice = $("#rollouts > .notice", doc);
  if (notice && newNotice) notice.textContent = newNotice.textContent;
  else if (newNotice) $("h2", section).after(document.importNode(newNotice, true));
  else if (notice) notice.remove();
  // The compressed steps: a step's chunk changes when the size budget keeps other groups.
  var changed = new Set();
  blocks.forEach(function (text, id) {
    if (!/^chunk-\d+$/.test(id)) return;
    var mine = document.getElementById(id);
    if (!mine) {
      // A new element, never a parsed one: the text of a data block is all it carries.
      mine = el("script", { type: "application/gzip-base64", id: id });
      document.body.appendChild(mine);
    } else if (mine.textContent === text) {
      return;
    }
    mine.textContent = text;
    changed.add(Number(id.slice(6)));
  });
  $$('script[id^="chunk-"]').forEach(function (node) {
    if (!blocks.has(node.id)) { node.remove(); changed.add(Number(node.id.slice(6))); }
  });
  changed.forEach(function (step) { decoded.delete(step); });
  ROLL.steps.forEach(function (s) {
    var node = stepNodes.get(s.step);
    if (!node || before.get(s.step) === JSON.stringify(s)) return;
    node.replaceChild(stepSummary(s), $("summary", node));
    changed.add(s.step);
  });
  // Steps the reader opened stay open and listed, with their open groups and trajectories.
  var list = visibleSteps();
  list.forEach(function (s, i) {
    var node = stepNodes.get(s.step);
    if (node && node.open && i >= shownSteps) shownSteps = i + 1;
  });
  if (rerunFilters && searchMatches !== null) {
    rerunFilters(changed);  // new steps may match the search
    return;
  }
  renderSteps();
  stepNodes.forEach(function (node, step) {
    if (node.open && changed.has(step)) refillStep(node);
  });
}

// Fill an open step again (its data changed), reopening the groups and trajectories that
// were open.
function refillStep(node) {
  var s = stepOf(node);
  if (!s) return;
  var open = $$('[aria-expanded="true"]', node).map(place);
  fillStep(node, s).then(function () {
    open.forEach(function (where) {
      var head = $(where, node);
      if (head && head.getAttribute("aria-expanded") !== "true") head.click();
    });
  });
}

// A selector for a group's or trajectory's toggle inside its step.
function place(head) {
  var traj = head.closest(".traj"), group = head.closest(".group");
  var sel = '.group[data-group="' + CSS.escape(group.dataset.group) + '"]';
  if (traj) sel += ' .traj[data-traj="' + CSS.escape(traj.dataset.traj) + '"] > .traj-head';
  else sel += " > .group-head";
  return sel;
}

document.body.dataset.ready = "yes";
