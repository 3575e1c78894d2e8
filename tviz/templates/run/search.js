// Search and reward filter.

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

// `only`: the steps to refill if open (new data); all of them when the filters changed.
function applyFilters(only) {
  var f = filterState(), run = ++state.searchRun, status = $("#search-status");
  var refill = function () {
    state.stepNodes.forEach(function (node, step) {
      if (node.open && (!only || only.has(step))) refillStep(node);
    });
  };
  if (!f.q && f.lo === -Infinity && f.hi === Infinity) {
    state.searchMatches = null;
    status.textContent = "";
    table.hits = null;
    filterTable();
    renderSteps(); refill();
    return;
  }
  if (!f.q) { table.hits = null; filterTable(); }  // a reward range alone needs no text
  status.textContent = "Searching…";
  // Searching needs every step's text: decompress them all (once; they stay decoded).
  var kept = state.roll.steps.filter(function (s) { return s.kept > 0; });
  Promise.all(kept.map(function (s) { return decodeStep(s.step).then(function (g) { return [s.step, g]; }); }))
    .then(function (pairs) {
      if (run !== state.searchRun) return;
      var matches = new Map(), groups = 0, hits = new Set();
      pairs.forEach(function (pair) {
        var n = 0;
        pair[1].forEach(function (g) {
          if (!groupMatches(g, f)) return;
          n++;
          var inPrompt = textMatches(g.p, f.q);
          g.t.forEach(function (t) {  // the samples table's rows that match
            if (trajVisible(t, f) && (inPrompt || textMatches(t.o, f.q) || (t.turns && textMatches(JSON.stringify(t.turns), f.q)))) {
              hits.add(pair[0] + ":" + g.g + ":" + t.i);
            }
          });
        });
        if (n) { matches.set(pair[0], n); groups += n; }
      });
      state.searchMatches = matches;
      status.textContent = groups + " groups in " + matches.size + " steps match";
      table.hits = f.q ? hits : null;
      filterTable();
      renderSteps(); refill();
    });
}

function startSearch() {
  function later() {
    clearTimeout(state.searchTimer);
    state.searchTimer = setTimeout(function () { applyFilters(); }, 250);
  }
  $("#search").addEventListener("input", later);
  $("#reward-min").addEventListener("input", later);
  $("#reward-max").addEventListener("input", later);
}
