// The pointer over a chart, handled by the page (Vega draws only the data): a hover line and
// one tooltip listing every series at that step, a range dragged across a chart to zoom every
// step chart to it (double-click or the toolbar's "reset" to undo), and a click to open that
// step's samples. The wheel is left alone: it scrolls the page.

function tipNode() {
  var node = $("#chart-tip");
  if (!node) {
    node = el("div", { id: "chart-tip", class: "chart-tip", role: "tooltip", hidden: true });
    document.body.appendChild(node);
  }
  return node;
}

// Where the plot is in the page: its canvas' box and Vega's origin in it.
function plotBox(node, view) {
  var canvas = node.querySelector("canvas, svg");
  if (!canvas) return null;
  // Vega's origin() leaves out the padding; the canvas is drawn at padding + origin.
  var r = canvas.getBoundingClientRect(), pad = view.padding(), o = view.origin();
  o = [o[0] + (pad.left || 0), o[1] + (pad.top || 0)];
  var n = node.getBoundingClientRect();
  return { left: r.left + o[0], top: r.top + o[1], width: view.width(), height: view.height(),
    inLeft: r.left - n.left + o[0], inTop: r.top - n.top + o[1] };
}

// The logged step nearest to `want` among the chart's series (up to the replay step).
function nearestStep(desc, want) {
  var best = null, limit = upto();
  seriesNames(desc).forEach(function (name) {
    var steps = desc.series[name][0], n = cut(steps, limit), k = cut(steps, want);
    [k - 1, k].forEach(function (j) {
      if (j >= 0 && j < n && (best === null || Math.abs(steps[j] - want) < Math.abs(best - want))) best = steps[j];
    });
  });
  return best;
}

function valueAt(desc, name, step, values) {
  var steps = desc.series[name][0], k = cut(steps, step) - 1;
  return k >= 0 && steps[k] === step ? values[k] : null;
}

// The heat chart's column holding `want`: its rows, and the steps it spans.
function heatColumn(desc, want) {
  var rows = desc.rows.filter(function (r) { return r.s0 - 0.5 <= want && want < r.s1 - 0.5 && r.s0 <= upto(); });
  return rows.length ? { rows: rows, from: rows[0].s0, to: rows[0].s1last } : null;
}

function showTip(desc, at, box, clientX, clientY) {
  var tip = tipNode(), lines = [];
  if (desc.kind === "heat") {
    lines.push(el("div", { class: "tip-head", text: at.from === at.to ? "step " + fmt(at.from) : "steps " + fmt(at.from) + "–" + fmt(at.to) }));
    at.rows.slice().sort(function (a, b) { return b.r0 - a.r0; }).forEach(function (r) {
      lines.push(el("div", { class: "tip-row" }, [el("span", { class: "tip-name", text: "reward " + r.label }),
        el("b", { text: fmtValue(Math.round(r.frac * 1000) / 10) + "%" }), el("span", { class: "muted", text: " " + fmt(r.n) + " samples" })]));
    });
  } else {
    lines.push(el("div", { class: "tip-head", text: "step " + fmt(at) }));
    var colors = colorsOf(desc);
    seriesNames(desc).forEach(function (name, i) {
      var v = valueAt(desc, name, at, desc.series[name][1]);
      var row = el("div", { class: "tip-row" }, [el("span", { class: "swatch", style: "background:" + colors[i] }),
        el("span", { class: "tip-name", text: desc.metric && name === "value" ? desc.name : name }), el("b", { text: fmtValue(v) })]);
      if (state.smooth > 0 && v !== null) row.appendChild(el("span", { class: "muted", text: " smoothed " + fmtValue(valueAt(desc, name, at, smoothedOf(desc, name))) }));
      lines.push(row);
    });
  }
  tip.replaceChildren.apply(tip, lines);
  tip.hidden = false;
  var w = tip.offsetWidth, h = tip.offsetHeight;
  var left = clientX + 14 + w > window.innerWidth ? clientX - 14 - w : clientX + 14;
  tip.style.left = Math.max(4, left) + "px";
  tip.style.top = Math.max(4, Math.min(window.innerHeight - h - 4, clientY - h / 2)) + "px";
}

function hideHover(node) {
  tipNode().hidden = true;
  $$(".hover-mark", node).forEach(function (m) { m.remove(); });
}

// A line at the hovered step and a dot on each series' line (the smoothed one when shown).
function markHover(node, view, box, desc, step) {
  $$(".hover-mark", node).forEach(function (m) { m.remove(); });
  var x = view.scale("x")(step), y = view.scale("y");
  if (!(x >= 0 && x <= box.width)) return;
  node.appendChild(el("div", { class: "hover-mark hover-line", style: "left:" + (box.inLeft + x) + "px;top:" + box.inTop + "px;height:" + box.height + "px" }));
  if (desc.kind !== "line") return;
  var colors = colorsOf(desc);
  seriesNames(desc).forEach(function (name, i) {
    var values = state.smooth > 0 ? smoothedOf(desc, name) : desc.series[name][1];
    var v = valueAt(desc, name, step, values), py = v === null ? NaN : y(v);
    if (!(py >= 0 && py <= box.height)) return;
    node.appendChild(el("div", { class: "hover-mark hover-dot", style: "left:" + (box.inLeft + x) + "px;top:" + (box.inTop + py) + "px;background:" + colors[i] }));
  });
}

function attachPointer(id, node, view) {
  if (node.dataset.pointer) return;  // a redraw keeps the listeners of the first draw
  node.dataset.pointer = "yes";
  var drag = null;
  function context(e) {
    var v = state.drawn[id], desc = ownGet(state.page.charts, id);
    if (!v || !desc) return null;
    var box = plotBox(node, v);
    if (!box) return null;
    var px = e.clientX - box.left;
    return { view: v, desc: desc, box: box, px: px, inside: px >= 0 && px <= box.width && e.clientY >= box.top && e.clientY <= box.top + box.height };
  }
  function stepAt(c) {
    var want = c.view.scale("x").invert(Math.max(0, Math.min(c.box.width, c.px)));
    if (c.desc.kind === "heat") return heatColumn(c.desc, want);
    return nearestStep(c.desc, want);
  }
  node.addEventListener("pointermove", function (e) {
    var c = context(e);
    if (!c) return;
    if (drag) {
      var dx = e.clientX - drag.clientX;
      if (Math.abs(dx) > 4) drag.moved = true;
      if (drag.moved) {
        hideHover(node);
        var a = Math.max(0, Math.min(c.box.width, drag.px)), b = Math.max(0, Math.min(c.box.width, c.px));
        if (!drag.brush) { drag.brush = el("div", { class: "brush" }); node.appendChild(drag.brush); }
        drag.brush.setAttribute("style", "left:" + (c.box.inLeft + Math.min(a, b)) + "px;width:" + Math.abs(b - a) + "px;top:" + c.box.inTop + "px;height:" + c.box.height + "px");
      }
      return;
    }
    var at = c.inside ? stepAt(c) : null;
    if (at === null) { hideHover(node); return; }
    showTip(c.desc, at, c.box, e.clientX, e.clientY);
    markHover(node, c.view, c.box, c.desc, c.desc.kind === "heat" ? (at.from + at.to) / 2 : at);
  });
  node.addEventListener("pointerleave", function () { if (!drag) hideHover(node); });
  node.addEventListener("pointerdown", function (e) {
    if (e.button !== 0) return;
    var c = context(e);
    if (!c || !c.inside) return;
    drag = { clientX: e.clientX, px: c.px, moved: false, brush: null };
    try { node.setPointerCapture(e.pointerId); } catch (err) { /* a synthetic event */ }
    e.preventDefault();  // no text selection while dragging
  });
  node.addEventListener("pointerup", function (e) {
    if (!drag) return;
    var d = drag, c = context(e);
    drag = null;
    if (d.brush) d.brush.remove();
    if (!c) return;
    var x = c.view.scale("x");
    if (d.moved) {
      var a = x.invert(Math.max(0, Math.min(c.box.width, d.px))), b = x.invert(Math.max(0, Math.min(c.box.width, c.px)));
      setZoom(Math.min(a, b), Math.max(a, b));
      return;
    }
    var at = stepAt(c);
    if (at === null || !c.desc.click || !$("#rollouts")) return;
    if (c.desc.kind === "heat") openStep(at.from, at.to);
    else openStep(at, null);
  });
  node.addEventListener("dblclick", function () { resetZoom(); });
}

// Every step chart shows steps [lo, hi] (at least two steps wide).
function setZoom(lo, hi) {
  if (hi - lo < 2) { var mid = (lo + hi) / 2; lo = mid - 1; hi = mid + 1; }
  state.zoom = [lo, hi];
  showZoom();
  refreshAll();
}

function resetZoom() {
  if (!state.zoom) return;
  state.zoom = null;
  showZoom();
  refreshAll();
}

function showZoom() {
  var box = $("#zoom-status");
  if (!box) return;
  box.hidden = !state.zoom;
  if (state.zoom) {
    $("#zoom-range").textContent = "steps " + fmt(Math.max(0, Math.ceil(state.zoom[0]))) + "–" + fmt(Math.floor(state.zoom[1]));
  }
}
