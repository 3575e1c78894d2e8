// `tviz watch` serves this page with a small script that, when the run gained data, fetches the
// rebuilt page and calls this with it parsed into an inert document, all but its compressed
// step chunks, which come last: `blocks` is a promise of their texts by id (without it, they
// are read from `doc`), so the header and charts need not wait for megabytes of rollouts.
// Everything is updated in place (a reload would restart Vega and blank the charts for a
// second): the header, each chart's data through its Vega view (zoom stays), the replay
// slider, the rollouts (open steps, groups and trajectories stay open), the notices. False
// when the new page is shaped otherwise (other charts, rollouts appearing): the script then
// reloads it. From file:// this is never called.
function liveUpdate(doc, blocks) {
  var page = JSON.parse(doc.getElementById("page-data").textContent);
  var roll = JSON.parse(doc.getElementById("rollout-data").textContent);
  if (Object.keys(page.charts).join("\n") !== Object.keys(state.page.charts).join("\n")) return false;
  if (!doc.getElementById("rollouts") !== !$("#rollouts")) return false;
  var evals = function (root) { var n = root.getElementById("eval-data"); return n ? n.textContent : ""; };
  if (evals(doc) !== evals(document)) return false;  // eval samples changed: reload (eval.js)
  // A metric that never changed is a value, not a panel: one more (or one that now changes)
  // reshapes the page too.
  var constants = function (root) { return $$(".metrics .constant", root).map(function (n) { return n.dataset.name; }).join("\n"); };
  if (constants(doc) !== constants(document)) return false;
  var old = state.page;
  state.page = page;
  // Header, config, other values: server-rendered text, swapped where it changed.
  [".run-name", ".page-header .facts", "section.config", "section.notes", "footer.provenance"]
    .forEach(function (sel) { swap(sel, doc); });
  showStatus();
  $$("figure.panel[data-panel]").forEach(function (fig) {
    var other = doc.querySelector('figure.panel[data-panel="' + CSS.escape(fig.dataset.panel) + '"]');
    swapChild(fig, other, ".panel-note");
  });
  $$(".metrics .constant").forEach(function (mine, i) {
    var theirs = $$(".metrics .constant", doc)[i];
    if (theirs && mine.textContent !== theirs.textContent) mine.replaceWith(document.importNode(theirs, true));
  });
  followReplay();
  Object.keys(state.drawn).forEach(function (id) {
    var desc = page.charts[id], before = old.charts[id];
    var node = chartNode(id);
    var redo = desc.spec !== before.spec || Boolean(node && $(".panel-empty", node)) ||
      (state.log && desc.kind === "line" && positive(desc) !== positive(before));
    refreshLater(id, redo);
  });
  if (!$("#rollouts")) return true;
  return Promise.resolve(blocks || chunksOf(doc)).then(function (chunks) {
    updateRollouts(doc, roll, chunks);
    return true;
  });
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
  var before = new Map(state.roll.steps.map(function (s) { return [s.step, JSON.stringify(s)]; }));
  setRoll(roll);
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
  changed.forEach(function (step) { state.decoded.delete(step); });
  // The samples table's rows (a block before the steps' chunks, so it is in `doc`).
  var rows = document.getElementById("sample-rows"), newRows = doc.getElementById("sample-rows");
  if (rows && newRows && rows.textContent !== newRows.textContent) {
    rows.textContent = newRows.textContent;
    var loaded = table.loading !== null;
    table.loading = null;
    if (loaded) loadTable();
  }
  state.roll.steps.forEach(function (s) {
    var node = state.stepNodes.get(s.step);
    if (!node || before.get(s.step) === JSON.stringify(s)) return;
    node.replaceChild(stepSummary(s), $("summary", node));
    changed.add(s.step);
  });
  // Steps the reader opened stay open and listed, with their open groups and trajectories.
  var list = visibleSteps();
  list.forEach(function (s, i) {
    var node = state.stepNodes.get(s.step);
    if (node && node.open && i >= state.shownSteps) state.shownSteps = i + 1;
  });
  if (state.searchMatches !== null) {
    applyFilters(changed);  // new steps may match the search
    return;
  }
  renderSteps();
  state.stepNodes.forEach(function (node, step) {
    if (node.open && changed.has(step)) refillStep(node);
  });
}
