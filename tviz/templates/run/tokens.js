// Tokens by logprob.

function logprobTools(t, tools) {
  var heat = null;
  var button = el("button", { type: "button", class: "button heat-toggle", "aria-pressed": "false", text: t.tt ? "Tokens by logprob" : "Token logprob heatmap" });
  button.addEventListener("click", function () {
    if (heat) { heat.remove(); heat = null; button.setAttribute("aria-pressed", "false"); return; }
    heat = heatmap(t.lp, t.tt);
    tools.after(heat);
    button.setAttribute("aria-pressed", "true");
  });
  tools.appendChild(button);
  var finite = t.lp.filter(function (v) { return v !== null; });
  var mean = finite.reduce(function (a, b) { return a + b; }, 0) / Math.max(1, finite.length);
  tools.appendChild(el("span", { class: "muted", text: "mean logprob " + fmt(mean, 3) + " · " + t.lp.length + " tokens" }));
}

// Colour of a token by its probability under the sampler: confident ones pale blue, unlikely
// ones saturated red. Lighter for text backgrounds, so the token stays readable on it.
function lpColor(lp, forText) {
  if (lp === null || lp === undefined) return forText ? "transparent" : "#e3e6ec";
  var p = Math.exp(Math.min(0, lp));
  var light = forText ? 62 + p * 32 : 52 + p * 38;
  return "hsl(" + Math.round(p * 210) + ", " + Math.round(75 - p * 40) + "%, " + Math.round(light) + "%)";
}
function lpTitle(i, lp) {
  return "token " + i + ": logprob " + fmt(lp, 4) + (lp === null ? "" : " (p = " + fmt(Math.exp(lp), 3) + ")");
}

const HEAT_ROW = 50;  // cells per row of the fallback grid

// The sampled tokens coloured by logprob: the token texts when the run logged them
// (extras "token_texts"), else one cell per token in rows of HEAT_ROW.
function heatmap(lps, texts) {
  var wrap = el("div", { class: "heat-wrap" });
  if (texts) {
    var text = el("div", { class: "token-text", "aria-label": "sampled tokens coloured by logprob" });
    texts.forEach(function (tok, i) {
      text.appendChild(el("span", { style: "background:" + lpColor(lps[i], true), title: lpTitle(i, lps[i]), text: tok }));
    });
    wrap.appendChild(text);
  } else {
    var grid = el("div", { class: "heatmap", role: "img", "aria-label": "token logprobs" });
    for (var start = 0; start < lps.length; start += HEAT_ROW) {
      var row = el("div", { class: "heat-row" }, [el("span", { class: "heat-index", text: String(start) })]);
      lps.slice(start, start + HEAT_ROW).forEach(function (lp, k) {
        row.appendChild(el("span", { class: "cell", style: "background:" + lpColor(lp, false), title: lpTitle(start + k, lp) }));
      });
      grid.appendChild(row);
    }
    wrap.appendChild(grid);
  }
  var stops = [0, -0.1, -0.5, -1, -2, -4].map(function (lp) {
    return el("span", { class: "legend-swatch", style: "background:" + lpColor(lp, Boolean(texts)), title: "logprob " + lp }, [String(lp)]);
  });
  wrap.appendChild(el("div", { class: "heat-legend" }, [
    el("span", { text: "logprob:" }),
  ].concat(stops).concat([
    el("span", { class: "legend-swatch", style: "background:" + lpColor(null, false), text: "none" }),
    el("span", { text: texts
      ? "Each sampled token, coloured by how likely the sampler found it; hover a token for its logprob."
      : "One cell per sampled token, in order (" + HEAT_ROW + " a row; the number is the first token's index); hover a cell for its logprob." }),
  ])));
  return wrap;
}
