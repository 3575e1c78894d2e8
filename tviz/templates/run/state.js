// All the run page changes as it runs; live.js puts the rebuilt page's data in it.

const PAGE_SIZE = 40;  // steps listed at first

const state = {
  page: readJSON("page-data"),  // {run, steps, charts, specs}
  roll: null,  // {steps, notice}, set with rewardRange: [lowest, highest] reward (setRoll)
  rewardRange: null,
  smooth: 0,  // the toolbar's smoothing, log scale, replay step (null: latest)
  log: false,
  upto: null,
  zoom: null,  // [first, last] step every step chart shows, or null: the whole run
  replayBanner: null,
  replayFrame: 0,
  drawn: Object.create(null),  // chart id -> its Vega view
  stale: new Map(),  // chart id -> true: draw it anew, false: new rows
  catchingUp: false,
  decoded: new Map(),  // step -> Promise of its groups
  stepNodes: new Map(),  // step -> <details>
  shownSteps: PAGE_SIZE,
  searchMatches: null,  // null, or Map of steps matching the current search -> matching groups
  searchRun: 0,
  searchTimer: 0,
};
setRoll(readJSON("rollout-data") || { steps: [], notice: "" });

function setRoll(roll) {
  state.roll = roll;
  state.rewardRange = rewardsSpan(roll);
}

function rewardsSpan(roll) {
  var lo = Infinity, hi = -Infinity;
  roll.steps.forEach(function (s) {
    if (s.worst !== null && s.worst < lo) lo = s.worst;
    if (s.best !== null && s.best > hi) hi = s.best;
  });
  return isFinite(lo) ? [lo, hi] : [0, 1];
}

function upto() { return state.upto === null ? Infinity : state.upto; }
