// Numbers written for their range: 4e-5, 1.125, 16.15, 12,400.

// A value on its own (tooltips, constants, the latest value): enough digits to tell it from
// its neighbours, an exponent when it is tiny or huge.
function fmtValue(v) {
  if (v === null || v === undefined || typeof v !== "number" || !isFinite(v)) return "–";
  var a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e7)) return expo(v, 4);
  if (Number.isInteger(v)) return v.toLocaleString("en-US");
  var text = String(Number(v.toPrecision(a >= 1e4 ? 7 : 5)));
  return a >= 1e4 ? Number(text).toLocaleString("en-US", { maximumFractionDigits: 2 }) : text;
}

// "4e-5", "1.25e+7" written short: no trailing zeros, no "+".
function expo(v, digits) {
  var text = v.toExponential(digits - 1).replace("e+", "e");
  return text.replace(/\.?0+e/, "e");
}

// A d3-format specifier (what Vega's axes take) for ticks over [lo, hi]: the decimals that
// tell about five ticks apart, an exponent for tiny or huge values.
function tickFormat(lo, hi) {
  var mag = Math.max(Math.abs(lo), Math.abs(hi));
  var step = Math.abs(hi - lo) / 4 || mag / 4 || 1;
  if (mag !== 0 && (mag < 1e-3 || mag >= 1e7)) {
    var sig = Math.max(1, Math.min(6, Math.ceil(Math.log10(mag / step)) + 1));
    return "." + (sig - 1) + "~e";
  }
  var decimals = Math.max(0, Math.min(8, Math.ceil(-Math.log10(step))));
  return ",." + decimals + "~f";
}

// The y domain drawn for these values: their range with a margin, never a flat line's zero
// height, and at least 0.5% of their size wide (16.14 to 16.165 is a dip, not a canyon); for
// a log scale, only the positive values.
function yDomain(lo, hi, log) {
  if (!isFinite(lo)) return log ? [0.1, 1] : [0, 1];
  var span = hi - lo, least = 0.005 * Math.max(Math.abs(lo), Math.abs(hi));
  if (!log && span > 0 && span < least) {
    var mid = (lo + hi) / 2;
    lo = mid - least / 2; hi = mid + least / 2; span = least;
  }
  if (log) {
    if (span === 0) return [lo / 1.5, hi * 1.5];
    var f = Math.pow(hi / lo, 0.05);
    return [lo / f, hi * f];
  }
  var pad = span > 0 ? span * 0.06 : (Math.abs(lo) * 0.05 || 0.5);
  return [lo - pad, hi + pad];
}
