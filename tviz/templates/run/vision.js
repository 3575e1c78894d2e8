// Images and geolocation.

function groupHasGeo(g) {
  return Boolean(g.gt) || g.t.some(function (t) { return t.pred || t.d !== undefined; });
}
function fmtKm(d) {
  if (d === null || d === undefined || !isFinite(d)) return "–";
  return (d < 10 ? d.toFixed(1) : Math.round(d).toLocaleString("en-US")) + " km";
}

function predictionLine(t, g) {
  var geo = "predicted " + (t.pred ? fmt(t.pred[0], 5) + ", " + fmt(t.pred[1], 5) : "–");
  if (g.gt) geo += " · true " + fmt(g.gt[0], 5) + ", " + fmt(g.gt[1], 5);
  if (t.d !== undefined) geo += " · distance " + fmtKm(t.d);
  return el("div", { class: "geo", text: geo });
}

function visionBlock(g) {
  var box = el("div", { class: "vision" });
  if (g.img) box.appendChild(el("img", { src: g.img, alt: "rollout image" }));
  else if (g.imgPath) box.appendChild(el("p", { class: "muted", text: (g.imgNote || "image not embedded") + ": " + g.imgPath }));
  var side = el("div", { class: "geo" });
  if (g.gt) {
    side.appendChild(el("div", { text: "true location " + fmt(g.gt[0], 5) + ", " + fmt(g.gt[1], 5) + (g.place ? " (" + g.place + ")" : "") }));
    var dists = g.t.map(function (t) { return t.d; }).filter(function (d) { return typeof d === "number" && isFinite(d); })
      .sort(function (a, b) { return a - b; });
    if (dists.length) {
      var median = dists.length % 2 ? dists[(dists.length - 1) / 2] : (dists[dists.length / 2 - 1] + dists[dists.length / 2]) / 2;
      side.appendChild(el("div", { class: "muted", text: dists.length + " predictions: closest " + fmtKm(dists[0]) +
        ", median " + fmtKm(median) + ", farthest " + fmtKm(dists[dists.length - 1]) }));
    }
    side.appendChild(miniMap(g));
    side.appendChild(el("div", { class: "map-legend" }, [
      el("span", { class: "map-key truth" }), "true location",
      el("span", { class: "map-key pred" }), "a trajectory's prediction, coloured by its reward; hover for its distance",
    ]));
  } else if (g.place) {
    side.appendChild(el("div", { text: g.place }));
  }
  box.appendChild(side);
  return box;
}

// Truth and every prediction on a lat/lon grid with coastlines (Natural Earth's, embedded in the
// page: it loads nothing), zoomed to fit them, with degree labels and a scale bar.
function miniMap(g) {
  var NS = "http://www.w3.org/2000/svg", W = 360, H = 220, PAD = 18;
  function svg(tag, attrs, text) {
    var n = document.createElementNS(NS, tag);
    Object.keys(attrs).forEach(function (k) { n.setAttribute(k, attrs[k]); });
    if (text !== undefined) n.textContent = text;
    return n;
  }
  function wrapLon(lon) { return ((lon + 540) % 360) - 180; }
  var lat0 = g.gt[0], lon0 = g.gt[1];
  // Longitudes relative to the truth, so predictions across the antimeridian stay near it.
  var pts = g.t.filter(function (t) { return t.pred; }).map(function (t) {
    return { t: t, lat: t.pred[0], dlon: wrapLon(t.pred[1] - lon0) };
  });
  var lats = [lat0].concat(pts.map(function (p) { return p.lat; }));
  var dlons = [0].concat(pts.map(function (p) { return p.dlon; }));
  var midLat = (Math.min.apply(null, lats) + Math.max.apply(null, lats)) / 2;
  var k = Math.max(0.2, Math.cos(midLat * Math.PI / 180));  // x degrees shrink with latitude
  var spanX = Math.max((Math.max.apply(null, dlons) - Math.min.apply(null, dlons)) * k, 0.5);
  var spanY = Math.max(Math.max.apply(null, lats) - Math.min.apply(null, lats), 0.5);
  var scale = Math.min((W - 2 * PAD) / spanX, (H - 2 * PAD) / spanY) / 1.15;  // px per degree
  scale = Math.max(scale, Math.min(W / 360, H / 180));
  var cx = (Math.max.apply(null, dlons) + Math.min.apply(null, dlons)) / 2 * k;
  var cy = midLat;
  function xy(lat, dlon) { return [W / 2 + (dlon * k - cx) * scale, H / 2 - (lat - cy) * scale]; }
  function unxy(x, y) { return [cy - (y - H / 2) / scale, (cx + (x - W / 2) / scale) / k]; }
  var root = svg("svg", { width: W, height: H, viewBox: "0 0 " + W + " " + H, class: "map", role: "img", "aria-label": "predicted and true locations" });
  var coast = landPath(lon0, function (lat, dlon) { return xy(lat, dlon); });
  if (coast) root.appendChild(svg("path", { d: coast, class: "land" }));
  // Grid lines every `step` degrees, about four across.
  var nice = [0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 45, 90];
  var step = nice.find(function (s) { return Math.max(W / scale / k, H / scale) / s <= 6; }) || 90;
  var topLeft = unxy(0, 0), bottomRight = unxy(W, H);
  function deg(v, pos, neg) {
    var a = Math.abs(v);
    return (Number.isInteger(a) ? a : Number(a.toFixed(1))) + "°" + (v > 0 ? pos : v < 0 ? neg : "");
  }
  for (var lon = Math.ceil((topLeft[1] + lon0) / step) * step; lon <= bottomRight[1] + lon0; lon += step) {
    var x = xy(0, lon - lon0)[0];
    root.appendChild(svg("line", { x1: x, x2: x, y1: 0, y2: H, stroke: "#dde3ec" }));
    if (x < W - 36) root.appendChild(svg("text", { x: x + 2, y: H - 4, class: "map-label" }, deg(wrapLon(lon), "E", "W")));
  }
  for (var lat = Math.ceil(bottomRight[0] / step) * step; lat <= topLeft[0]; lat += step) {
    var y = xy(lat, 0)[1];
    root.appendChild(svg("line", { x1: 0, x2: W, y1: y, y2: y, stroke: "#dde3ec" }));
    if (y > 12) root.appendChild(svg("text", { x: 3, y: y - 2, class: "map-label" }, deg(lat, "N", "S")));
  }
  // Scale bar: the roundest distance about 70 px long.
  var kmPerPx = 111.32 * k / scale;
  var bar = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000].filter(function (d) { return d / kmPerPx <= 90; }).pop();
  if (bar) {
    var len = bar / kmPerPx;
    root.appendChild(svg("path", { d: "M" + (W - 10 - len) + "," + (H - 14) + "v4h" + len + "v-4", fill: "none", stroke: "#5b6475" }));
    root.appendChild(svg("text", { x: W - 10 - len / 2, y: H - 16, class: "map-label", "text-anchor": "middle" }, bar.toLocaleString("en-US") + " km"));
  }
  var truth = xy(lat0, 0);
  pts.forEach(function (p) {
    var q = xy(p.lat, p.dlon);
    root.appendChild(svg("line", { x1: truth[0], y1: truth[1], x2: q[0], y2: q[1], stroke: rewardColor(p.t.r), "stroke-opacity": 0.55, "stroke-width": 1 }));
  });
  pts.slice().reverse().forEach(function (p) {  // dots above the lines, the best one on top
    var q = xy(p.lat, p.dlon);
    var dot = svg("circle", { cx: q[0], cy: q[1], r: 4, fill: rewardColor(p.t.r), stroke: "#fff", "stroke-width": 1, class: "pred", "data-traj": p.t.i });
    dot.appendChild(svg("title", {}, "#" + p.t.i + " · reward " + fmt(p.t.r, 3) + (p.t.d !== undefined ? " · " + fmtKm(p.t.d) : "")));
    root.appendChild(dot);
  });
  var ring = svg("circle", { cx: truth[0], cy: truth[1], r: 6.5, fill: "none", stroke: "#1f2430", "stroke-width": 2, class: "truth" });
  ring.appendChild(svg("title", {}, "true location" + (g.place ? ": " + g.place : "")));
  root.appendChild(ring);
  root.appendChild(svg("circle", { cx: truth[0], cy: truth[1], r: 1.5, fill: "#1f2430" }));
  return root;
}

// The land as one SVG path in the map's projection. Longitudes are taken relative to the
// truth's (as the points are), so a ring is cut where it crosses the far side of the world.
function landPath(lon0, project) {
  var land = ownGet(state.page, "land"), rings = land && Array.isArray(land.rings) ? land.rings : [];
  var d = [];
  rings.forEach(function (ring) {
    if (!Array.isArray(ring)) return;
    var lon = 0, lat = 0, prev = null;
    for (var i = 0; i + 1 < ring.length; i += 2) {
      lon += ring[i]; lat += ring[i + 1];
      var dlon = ((lon / 10 - lon0 + 540) % 360) - 180, p = project(lat / 10, dlon);
      if (!isFinite(p[0]) || !isFinite(p[1])) continue;
      d.push((prev === null || Math.abs(dlon - prev) > 180 ? "M" : "L") + p[0].toFixed(1) + "," + p[1].toFixed(1));
      prev = dlon;
    }
    if (d.length) d.push("Z");
  });
  return d.join("");
}
