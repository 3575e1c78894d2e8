// A step's rollouts, decompressed when it is opened.

const parsed = new Promise(function (resolve) {
  if (document.readyState !== "loading") resolve();
  else document.addEventListener("DOMContentLoaded", resolve);
});

function decodeStep(step) {
  if (state.decoded.has(step)) return state.decoded.get(step);
  var promise = parsed.then(function () { return decodeNow(step); });
  state.decoded.set(step, promise);
  return promise;
}

function decodeNow(step) {
  return decodeBlock("chunk-" + step);
}

// The groups of the compressed block with this id (a step's, or an eval chunk's).
function decodeBlock(id) {
  var node = document.getElementById(id);
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
