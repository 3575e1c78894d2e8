// Smoothing: one rule, the same as tviz/render/smoothing.py (tests/test_smoothing.py checks
// that both give the same numbers), so a static figure shows what the page draws.
//
// A debiased exponential moving average over a series' points in order, as TensorBoard's:
// avg = avg * weight + (1 - weight) * value, shown divided by (1 - weight^n) after n values.
// A gap (null) stays a gap and leaves the average as it was. weight^n is kept by
// multiplication, not Math.pow, so that JS and Python round alike.
function ema(values, weight) {
  var out = new Array(values.length), last = 0, decay = 1;
  for (var i = 0; i < values.length; i++) {
    var v = values[i];
    if (v === null || v === undefined) { out[i] = null; continue; }
    last = last * weight + (1 - weight) * v;
    decay *= weight;
    out[i] = weight > 0 ? last / (1 - decay) : v;
  }
  return out;
}

// The smoothing a run gets by default: off below 100 steps (every point is worth seeing);
// from there an average over about a thirtieth of the run (weight 1 - 30 / steps), kept
// between 0.6 and 0.95, to two decimals.
function defaultSmoothing(steps) {
  if (!(steps >= 100)) return 0;
  var w = Math.min(0.95, Math.max(0.6, 1 - 30 / steps));
  return Math.floor(w * 100 + 0.5) / 100;
}
