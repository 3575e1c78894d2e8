// Eval samples: each eval set, then its steps, then their groups and trajectories, apart from
// the training steps (their groups are drawn by cards.js, as training groups are).

const NO_FILTER = { q: "", lo: -Infinity, hi: Infinity };

// An eval step's line: the figures of a training step's (steps.js), without search counts.
function evalSummary(s) {
  var kept = s.kept < s.groups
    ? (s.kept ? s.kept + " of " + s.groups + " groups in this page" : "left out of this page")
    : "";
  return el("summary", {}, [
    el("span", { class: "step-title", text: "Step " + s.step.toLocaleString("en-US") }),
    el("span", { class: "stat stat-groups", text: fmt(s.groups) + " groups" }),
    stat("stat-samples", "", fmt(s.traj), " samples"),
    stat("stat-best", "best ", fmt(s.best, 3)),
    stat("stat-mean", "mean ", fmt(s.mean, 3)),
    stat("stat-worst", "worst ", fmt(s.worst, 3)),
    el("span", { class: "kept", text: kept }),
  ]);
}

function fillEval(node, s) {
  var body = node.querySelector(".step-body");
  if (!body.firstChild) body.appendChild(el("p", { class: "muted", text: "Decompressing…" }));
  return decodeBlock("eval-chunk-" + s.id).then(function (groups) {
    var out = document.createDocumentFragment();
    if (!groups.length) {
      out.appendChild(el("p", { class: "muted", text: "This eval step's rollouts were left out of the page to keep it within its size budget." }));
    } else if (s.kept < s.groups) {
      out.appendChild(el("p", { class: "hidden-note", text: "Showing " + s.kept + " of " + s.groups + " groups: the page's size budget left the rest out." }));
    }
    var common = commonStart(groups);
    groups.forEach(function (g) { out.appendChild(groupCard(g, NO_FILTER, common, s.step)); });
    body.replaceChildren(out);
    node.dataset.filled = "yes";
  });
}

function evalSet(set) {
  var steps = el("div", { class: "steps" });
  set.steps.forEach(function (s) {
    var node = el("details", { class: "step eval-step", "data-eval": set.name, "data-step": s.step }, [evalSummary(s), el("div", { class: "step-body" })]);
    node.addEventListener("toggle", function () { if (node.open && !node.dataset.filled) fillEval(node, s); });
    steps.appendChild(node);
  });
  var n = set.steps.length;
  return el("div", { class: "eval-set", "data-eval": set.name }, [
    el("h3", {}, ["Eval set ", el("b", { text: set.name }), el("span", { class: "muted", text: " · " + n + (n === 1 ? " step" : " steps") })]),
    steps,
  ]);
}

function startEvals() {
  var box = $("#eval-sets");
  if (!box) return;
  var data = readJSON("eval-data") || { sets: [] };
  (Array.isArray(data.sets) ? data.sets : []).forEach(function (set) { box.appendChild(evalSet(set)); });
}
