// Helpers shared by the run page and the index. This file is inlined into the page's own
// function scope: the Vega bundle declares ~1500 globals, so nothing here is global.

function $(sel, root) { return (root || document).querySelector(sel); }
function $$(sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); }

// Every piece of run data reaches the DOM through textContent, never innerHTML.
function el(tag, attrs, children) {
  var node = document.createElement(tag);
  if (attrs) {
    Object.keys(attrs).forEach(function (k) {
      var v = attrs[k];
      if (v === undefined || v === null || v === false) return;
      if (k === "text") node.textContent = String(v);
      else if (k === "class") node.className = v;
      else if (k === "style") node.setAttribute("style", v);
      else if (k.slice(0, 2) === "on") node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : String(v));
    });
  }
  (children || []).forEach(function (c) {
    if (c === null || c === undefined || c === false) return;
    node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
  });
  return node;
}

// Run data is untrusted: a key may be "constructor" or "__proto__", a list may be a string.
function own(obj, key) {
  return obj !== null && typeof obj === "object" && Object.prototype.hasOwnProperty.call(obj, key);
}
function ownGet(obj, key) { return own(obj, key) ? obj[key] : undefined; }
function isObject(v) { return v !== null && typeof v === "object" && !Array.isArray(v); }

function readJSON(id) {
  var node = document.getElementById(id);
  return node ? JSON.parse(node.textContent) : null;
}

function fmt(v, digits) {
  if (v === null || v === undefined || typeof v !== "number" || !isFinite(v)) return "–";
  if (Number.isInteger(v)) return v.toLocaleString("en-US");
  var a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(2);
  return Number(v.toPrecision(digits || 4)).toString();
}

function fmtAgo(seconds) {
  seconds = Math.max(0, Math.round(seconds));
  if (seconds < 90) return seconds + " s";
  var m = Math.round(seconds / 60);
  if (m < 90) return m + " min";
  var h = Math.floor(m / 60);
  if (h < 48) return h + " h " + (m % 60) + " min";
  return Math.floor(h / 24) + " days";
}

function fmtLocal(ts) {
  if (ts === null || ts === undefined) return "–";
  var d = new Date(ts * 1000);
  return d.toLocaleString(undefined, { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}

// A run still marked running whose last data is older than `quietAfter` has gone quiet:
// decided here, with the reader's clock, so the page itself stays the same byte for byte.
function liveStatus(status, lastData, quietAfter) {
  if (status === "running" && lastData && Date.now() / 1000 - lastData > quietAfter) return "quiet";
  return status;
}

// `ast: true`: Vega evaluates expressions with its interpreter instead of compiling them
// with Function(), so the page's CSP needs no 'unsafe-eval'.
// The run page's charts are Vega (compiled at build time) with the page's own hover and
// tooltip: Vega's hover re-encoding and tooltip handler are off there.
function embedOptions(mode) {
  // No default style either: vega-embed's would make each chart an inline block, a few pixels
  // taller once drawn, and move what is below.
  if (mode === "vega") return { mode: "vega", renderer: "canvas", actions: false, ast: true, hover: false, tooltip: false, defaultStyle: false };
  return { mode: "vega-lite", renderer: "canvas", actions: false, ast: true, tooltip: { theme: "light" } };
}

// Log scale where every value is positive, else symlog (which also draws zero and negatives).
function withScale(spec, log, values) {
  var copy = JSON.parse(JSON.stringify(spec));
  if (!log) return copy;
  var positive = values.every(function (v) { return v === null || v > 0; });
  var type = positive ? "log" : "symlog";
  (copy.layer || [copy]).forEach(function (layer) {
    var y = layer.encoding && layer.encoding.y;
    if (y && typeof y === "object") y.scale = Object.assign({}, y.scale || {}, { type: type, zero: false });
  });
  return copy;
}

function toast(message) {
  var old = $(".toast");
  if (old) old.remove();
  var t = el("div", { class: "toast", role: "status", text: message });
  document.body.appendChild(t);
  setTimeout(function () { t.remove(); }, 3500);
}
