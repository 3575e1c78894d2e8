// Prompt history: a prompt the run saw at several steps, its group's mean reward at each, from
// every group the run logged (the build reads them from the database; see
// tviz/store/prompts.py), drawn as a small SVG chart one click away.

function historyOf(g) {
  var h = g && g.ph ? ownGet(state.page.history, g.ph) : undefined;
  return Array.isArray(h) && Array.isArray(h[0]) && Array.isArray(h[1]) && h[0].length > 1 ? h : null;
}

// A button that shows and hides the chart, or null when the prompt was seen at one step.
function historyButton(g, step) {
  var h = historyOf(g);
  if (!h) return null;
  var chart = null;
  var button = el("button", { type: "button", class: "chip-button history-toggle", "aria-pressed": "false",
    title: "This prompt's mean reward at every step it was sampled",
    text: "seen at " + fmt(new Set(h[0]).size) + " steps" });
  button.addEventListener("click", function (e) {
    e.stopPropagation();  // inside a group's head: do not open the group too
    if (chart) { chart.remove(); chart = null; button.setAttribute("aria-pressed", "false"); return; }
    chart = historyChart(h, step);
    var card = button.closest(".group") || button.parentNode;
    var head = button.closest(".group-head");
    if (head) head.after(chart); else card.appendChild(chart);
    button.setAttribute("aria-pressed", "true");
  });
  return button;
}

// The history under a trajectory opened from the samples table.
function historyBlock(g, step) {
  var h = historyOf(g);
  if (!h) return null;
  return el("div", { class: "history-block" }, [el("div", { class: "label", text: "This prompt over training" }), historyChart(h, step)]);
}

function historyChart(h, step) {
  var NS = "http://www.w3.org/2000/svg", W = 420, H = 130, L = 44, R = 10, T = 10, B = 24;
  function svg(tag, attrs, text) {
    var n = document.createElementNS(NS, tag);
    Object.keys(attrs).forEach(function (k) { n.setAttribute(k, attrs[k]); });
    if (text !== undefined) n.textContent = text;
    return n;
  }
  var steps = h[0], means = h[1];
  var pts = [];
  steps.forEach(function (s, i) { if (num(s) !== null && num(means[i]) !== null) pts.push([s, means[i]]); });
  var box = el("div", { class: "history" });
  if (!pts.length) { box.appendChild(el("p", { class: "muted", text: "No rewards were logged for this prompt." })); return box; }
  var x0 = pts[0][0], x1 = pts[pts.length - 1][0], lo = Infinity, hi = -Infinity;
  pts.forEach(function (p) { lo = Math.min(lo, p[1]); hi = Math.max(hi, p[1]); });
  var dom = yDomain(lo, hi, false);
  function x(s) { return L + (x1 > x0 ? (s - x0) / (x1 - x0) : 0.5) * (W - L - R); }
  function y(v) { return T + (1 - (v - dom[0]) / (dom[1] - dom[0])) * (H - T - B); }
  var root = svg("svg", { width: W, height: H, viewBox: "0 0 " + W + " " + H, class: "history-chart", role: "img",
    "aria-label": "mean reward of this prompt's group at each step" });
  [dom[0], (dom[0] + dom[1]) / 2, dom[1]].forEach(function (v) {
    root.appendChild(svg("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid" }));
    root.appendChild(svg("text", { x: L - 4, y: y(v) + 3, "text-anchor": "end", class: "axis-label" }, fmtValue(Number(v.toPrecision(3)))));
  });
  root.appendChild(svg("text", { x: L, y: H - 6, class: "axis-label" }, "step " + fmt(x0)));
  root.appendChild(svg("text", { x: W - R, y: H - 6, "text-anchor": "end", class: "axis-label" }, "step " + fmt(x1)));
  root.appendChild(svg("polyline", { points: pts.map(function (p) { return x(p[0]) + "," + y(p[1]); }).join(" "), class: "history-line" }));
  pts.forEach(function (p) {
    var here = p[0] === step;
    var dot = svg("circle", { cx: x(p[0]), cy: y(p[1]), r: here ? 5 : 3, class: here ? "history-dot here" : "history-dot", fill: rewardColor(p[1]) });
    dot.appendChild(svg("title", {}, "step " + fmt(p[0]) + ": mean reward " + fmtValue(p[1]) + (here ? " (this group)" : "")));
    root.appendChild(dot);
  });
  box.appendChild(root);
  box.appendChild(el("p", { class: "muted history-note", text: pts.length + " groups over " + fmt(new Set(steps).size) +
    " steps, from every group the run logged (including those this page left out)." }));
  return box;
}
