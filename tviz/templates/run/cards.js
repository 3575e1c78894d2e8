// A step's groups and trajectories.

function rewardColor(r) {
  if (r === null || r === undefined) return "#c3c9d4";
  var range = state.rewardRange;
  var t = range[1] > range[0] ? (r - range[0]) / (range[1] - range[0]) : 1;
  t = Math.max(0, Math.min(1, t));
  // red (low) -> amber -> green (high), muted so text on it stays readable
  var hue = Math.round(t * 140);
  return "hsl(" + hue + ", 55%, 46%)";
}
function rewardBadge(r) {
  return el("span", { class: "reward", style: "background:" + rewardColor(r) + ";color:#fff", text: fmt(r, 3) });
}

// `head` shows and hides what `makeBody()` builds.
function expander(box, head, makeBody) {
  var body = null;
  function toggle() {
    if (body) { body.remove(); body = null; head.setAttribute("aria-expanded", "false"); return; }
    body = makeBody();
    box.appendChild(body);
    head.setAttribute("aria-expanded", "true");
  }
  head.addEventListener("click", toggle);
  head.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); toggle(); } });
  box.appendChild(head);
  return box;
}

// Where the groups' prompts of a step start to differ (few-shot examples, a system prompt, one
// question for every image): each group's header shows its own words from there.
function commonStart(groups) {
  var texts = groups.map(function (g) { return (g.q || g.p || "").replace(/\s+/g, " "); }).filter(Boolean);
  if (texts.length < 2) return 0;
  var first = texts[0], n = first.length;
  texts.forEach(function (t) { var i = 0; while (i < n && i < t.length && t[i] === first[i]) i++; n = i; });
  if (texts.every(function (t) { return t.length === n; })) return 0;  // all the same: show it whole
  while (n > 0 && first[n - 1] !== " ") n--;  // back to a word's start
  return n >= 40 ? n : 0;  // a few shared words ("What is") are part of each question
}

function promptPreview(g, common) {
  var text = (g.q || g.p || "").replace(/\s+/g, " ");
  var shown = common > 0 && text.length > common ? "…" + text.slice(common) : text;
  if (g.place) shown = g.place + (shown ? " · " + shown : "");
  var box = el("span", { class: "prompt-start" + (shown ? "" : " muted"), title: g.q ? "the last user message of the prompt" : "" });
  if (g.img) box.appendChild(el("img", { class: "thumb", src: g.img, alt: "" }));
  box.appendChild(document.createTextNode(shown ? shown.slice(0, 300) : "(no prompt text logged)"));
  return box;
}

function groupCard(g, f, common, step) {
  var card = el("div", { class: "group", "data-group": g.g });
  var range = state.rewardRange;
  var bars = el("div", { class: "bars", title: "one bar per trajectory, height = reward" });
  g.t.forEach(function (t) {
    var h = t.r === null ? 0 : (range[1] > range[0] ? (t.r - range[0]) / (range[1] - range[0]) : 1);
    bars.appendChild(el("span", { style: "height:" + Math.max(8, Math.round(h * 100)) + "%;background:" + rewardColor(t.r), title: "reward " + fmt(t.r, 4) }));
  });
  var idLabel = el("span", { class: "group-id", text: "Group " + g.g });
  if (g.flat) idLabel.appendChild(el("span", { class: "flat-badge", title: "every sample got the same reward: no learning signal for GRPO", text: "no signal" }));
  var head = el("div", { class: "group-head", role: "button", tabindex: "0", "aria-expanded": "false" }, [
    idLabel,
    el("span", { class: "group-rewards" }, ["best ", el("b", { text: fmt(g.best, 3) }), " · mean ", el("b", { text: fmt(g.mean, 3) })]),
    bars,
    promptPreview(g, common || 0),
    historyButton(g, step) || el("span", { class: "history-none" }),
  ]);
  return expander(card, head, function () { return groupBody(g, f); });
}

function groupBody(g, f) {
  var body = el("div", { class: "group-body" });
  body.appendChild(el("div", { class: "label", text: "Prompt" }));
  if (g.p) body.appendChild(highlighted(g.p, f.q));
  else body.appendChild(el("p", { class: "muted no-text", text: "No prompt text was logged for this group." }));
  if (g.imgPath || g.gt) body.appendChild(visionBlock(g));
  if (g.x) body.appendChild(extrasBlock(g.x));
  body.appendChild(el("div", { class: "label", text: "Trajectories, best first" }));
  var hidden = 0;
  g.t.forEach(function (t) {
    if (!trajVisible(t, f)) { hidden++; return; }
    body.appendChild(trajRow(t, f, g));
  });
  if (hidden) body.appendChild(el("p", { class: "hidden-note", text: hidden + " trajectories hidden by the reward filter" }));
  return body;
}

function trajRow(t, f, g) {
  var row = el("div", { class: "traj", "data-traj": t.i });
  var len = t.nt !== undefined ? t.nt + " tok" : (t.o || "").length + " chars";
  var preview = t.o || (t.turns ? "(" + t.turns.length + " turns)" : "");
  var geo = groupHasGeo(g);
  var head = el("div", { class: "traj-head" + (geo ? " with-distance" : ""), role: "button", tabindex: "0", "aria-expanded": "false" }, [
    rewardBadge(t.r),
    el("span", { class: "muted", text: "#" + t.i }),
    el("span", { class: "muted", text: len }),
    geo ? el("span", { class: "distance", title: "distance from the true location", text: t.d !== undefined ? fmtKm(t.d) : "–" }) : null,
    el("span", { class: "traj-preview", text: preview.slice(0, 300).replace(/\s+/g, " ") }),
  ]);
  return expander(row, head, function () { return trajBody(t, f, g); });
}

function trajBody(t, f, g) {
  var body = el("div", { class: "traj-body" });
  if (t.turns && t.turns.length) {
    body.appendChild(el("div", { class: "label", text: "Turns" }));
    t.turns.forEach(function (turn, i) { body.appendChild(turnBlock(turn, i, f)); });
  }
  if (t.o || !t.turns) {
    body.appendChild(el("div", { class: "label", text: "Output" }));
    var text = highlighted(t.o, f.q);
    body.appendChild(text);
  }
  var tools = el("div", { class: "traj-tools" });
  if (t.lp && t.lp.length) logprobTools(t, tools);
  if (t.sr && t.sr.length > 1) {  // one step's reward is the trajectory's reward
    var chips = el("span", { class: "chips", title: "reward of each step of the episode" });
    t.sr.forEach(function (r, i) { chips.appendChild(el("span", { text: "step " + (i + 1) + ": " + fmt(r, 4) })); });
    tools.appendChild(el("span", { class: "muted", text: "Reward by step:" }));
    tools.appendChild(chips);
  }
  if (tools.childNodes.length) body.appendChild(tools);
  if (t.pred || t.d !== undefined) body.appendChild(predictionLine(t, g));
  if (t.x) body.appendChild(extrasBlock(t.x));
  return body;
}

// A turn of a multi-turn episode: {role, content} (or text) as chat, tinker-cookbook's
// {observation_text, action_text, reward, metrics, logs, ...}, or anything else as JSON.
const TURN_TEXTS = [["observation_text", "observation"], ["action_text", "action"]];
function turnBlock(turn, i, f) {
  var box = el("div", { class: "turn" });
  if (!isObject(turn)) {
    box.appendChild(el("div", { class: "turn-role", text: "turn " + (i + 1) }));
    box.appendChild(highlighted(typeof turn === "string" ? turn : JSON.stringify(turn, null, 2), f.q));
    return box;
  }
  var role = ownGet(turn, "role");
  if (role === undefined) role = ownGet(turn, "speaker");
  var reward = ownGet(turn, "reward");
  box.appendChild(el("div", { class: "turn-role", text: (role === undefined || role === null ? "turn " + (i + 1) : str(role)) +
    (reward !== undefined && reward !== null ? " · reward " + fmt(reward, 4) : "") }));
  var content = ownGet(turn, "content");
  if (content === undefined || content === null) content = ownGet(turn, "text");
  var shown = ["role", "speaker", "reward", "content", "text"];
  var rest = Object.create(null);  // a "__proto__" key stays a key
  if (content !== undefined && content !== null) {
    box.appendChild(highlighted(typeof content === "string" ? content : JSON.stringify(content, null, 2), f.q));
  } else if (TURN_TEXTS.some(function (p) { return own(turn, p[0]); })) {
    TURN_TEXTS.forEach(function (p) {
      var text = ownGet(turn, p[0]);
      if (text === undefined || text === null) return;
      box.appendChild(el("div", { class: "label", text: p[1] }));
      box.appendChild(highlighted(str(text), f.q));
    });
    shown = shown.concat(["observation_text", "action_text", "turn_idx"]);
  } else {
    Object.keys(turn).forEach(function (k) { if (shown.indexOf(k) < 0) rest[k] = turn[k]; });
    box.appendChild(highlighted(JSON.stringify(rest, null, 2), f.q));
    return box;
  }
  Object.keys(turn).forEach(function (k) { if (shown.indexOf(k) < 0) rest[k] = turn[k]; });
  if (Object.keys(rest).length) box.appendChild(extrasBlock(rest));
  return box;
}

function extrasBlock(x) {
  var table = el("table", { class: "kv" });
  if (!isObject(x)) x = { extras: x };
  Object.keys(x).forEach(function (k) {
    var v = x[k];
    table.appendChild(el("tr", {}, [el("th", { text: k }), el("td", { text: typeof v === "string" ? v : JSON.stringify(v) })]));
  });
  return table;
}
