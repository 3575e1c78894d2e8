// The rollout browser's steps.

function visibleSteps() {
  var limit = upto();
  return state.roll.steps.filter(function (s) {
    return s.step <= limit && (state.searchMatches === null || state.searchMatches.has(s.step));
  });
}

// "8 groups", or while a search or reward filter is on, "3 of 8 groups match".
function groupsText(s) {
  var n = state.searchMatches === null ? undefined : state.searchMatches.get(s.step);
  return n === undefined ? fmt(s.groups) + " groups" : fmt(n) + " of " + fmt(s.groups) + " groups match";
}

// One fixed-width cell per figure (see .step > summary in the CSS), so the columns line up
// from step to step whatever the numbers; the optional cells are always there, maybe empty.
function stat(cls, label, value, after) {
  return el("span", { class: "stat " + cls }, [label, el("b", { text: value }), after]);
}

function stepSummary(s) {
  var kept = s.kept < s.groups
    ? (s.kept ? s.kept + " of " + s.groups + " groups in this page" : "rollouts left out of this page")
    : "";
  return el("summary", {}, [
    el("span", { class: "step-title", text: "Step " + s.step.toLocaleString("en-US") }),
    el("span", { class: "stat stat-groups", title: "groups in this step", text: groupsText(s) }),
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
  var wanted = list.slice(0, state.shownSteps);
  var keep = new Set(wanted.map(function (s) { return s.step; }));
  state.stepNodes.forEach(function (node, step) {
    if (!keep.has(step)) { node.remove(); state.stepNodes.delete(step); }
  });
  var prev = null;
  wanted.forEach(function (s) {
    var node = state.stepNodes.get(s.step);
    if (node) {
      var count = $(".stat-groups", node);
      if (count.textContent !== groupsText(s)) count.textContent = groupsText(s);
    } else {
      node = el("details", { class: "step", "data-step": s.step }, [stepSummary(s), el("div", { class: "step-body" })]);
      node.addEventListener("toggle", function () { if (node.open) fillStep(node, stepOf(node)); });
      state.stepNodes.set(s.step, node);
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

function startSteps() {
  renderSteps();
  $("#more-steps").addEventListener("click", function () { state.shownSteps += PAGE_SIZE * 5; renderSteps(); });
}

function stepOf(node) {
  var step = Number(node.dataset.step);
  return state.roll.steps.find(function (s) { return s.step === step; });
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
    var common = commonStart(groups);
    groups.forEach(function (g) {
      if (!groupMatches(g, f)) return;
      shown++;
      out.appendChild(groupCard(g, f, common, s.step));
    });
    if (!shown) out.appendChild(el("p", { class: "muted", text: "No group of this step matches the search or reward filter." }));
    body.replaceChildren(out);
    node.dataset.filled = "yes";
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
  if (index >= state.shownSteps) { state.shownSteps = index + PAGE_SIZE; renderSteps(); }
  var node = state.stepNodes.get(target.step);
  if (!node) return;
  node.open = true;
  // Its header lands just below the sticky toolbar (the CSS' scroll-margin-top), at once (a
  // smooth scroll across a long page can end off its mark when the page moves meanwhile),
  // and flashes so the eye finds it.
  node.scrollIntoView({ block: "start" });
  node.classList.remove("flash");
  void node.offsetWidth;  // restart the animation
  node.classList.add("flash");
  clearTimeout(node.flashTimer);
  node.flashTimer = setTimeout(function () { node.classList.remove("flash"); }, 2600);
  // Once filled (its body grows below the header), make sure the header is still in place.
  decodeStep(target.step).then(function () {
    requestAnimationFrame(function () {
      var top = node.getBoundingClientRect().top, bar = $("#toolbar").getBoundingClientRect().bottom;
      if (top < bar - 1 || top > bar + 40) node.scrollIntoView({ block: "start" });
    });
  });
}
