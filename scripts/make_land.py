"""Make tviz/templates/land.json, the coastlines the vision pages' maps draw.

Source: Natural Earth's 1:110m land polygons (public domain), version 4.1.0, as TopoJSON in the
npm package world-atlas 2.0.2 (`npm pack world-atlas@2.0.2`, file `package/land-110m.json`).
The rings are simplified (Douglas-Peucker, 0.2 degree), tiny islands dropped, coordinates
rounded to 0.1 degree and delta-encoded: about 20 KB, the same bytes every run.

    python scripts/make_land.py path/to/land-110m.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

TOLERANCE = 0.2  # degrees
MIN_AREA = 0.5  # square degrees: smaller islands are left out
OUT = Path(__file__).resolve().parents[1] / "tviz" / "templates" / "land.json"


def decode_arcs(topo: dict) -> list[list[tuple[float, float]]]:
    (sx, sy), (tx, ty) = topo["transform"]["scale"], topo["transform"]["translate"]
    arcs = []
    for arc in topo["arcs"]:
        x = y = 0
        points = []
        for dx, dy in arc:
            x += dx
            y += dy
            points.append((x * sx + tx, y * sy + ty))
        arcs.append(points)
    return arcs


def ring(arcs: list, indexes: list[int]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for i in indexes:
        points = arcs[i] if i >= 0 else arcs[~i][::-1]
        out.extend(points if not out else points[1:])
    return out


def simplify(points: list[tuple[float, float]], tol: float) -> list[tuple[float, float]]:
    if len(points) < 3:
        return points
    keep = [False] * len(points)
    keep[0] = keep[-1] = True
    stack = [(0, len(points) - 1)]
    while stack:
        a, b = stack.pop()
        (x1, y1), (x2, y2) = points[a], points[b]
        best, at = 0.0, -1
        for i in range(a + 1, b):
            x, y = points[i]
            dx, dy = x2 - x1, y2 - y1
            norm = (dx * dx + dy * dy) ** 0.5
            d = (
                abs(dy * x - dx * y + x2 * y1 - y2 * x1) / norm
                if norm
                else ((x - x1) ** 2 + (y - y1) ** 2) ** 0.5
            )
            if d > best:
                best, at = d, i
        if best > tol:
            keep[at] = True
            stack += [(a, at), (at, b)]
    return [p for p, k in zip(points, keep, strict=True) if k]


def area(points: list[tuple[float, float]]) -> float:
    return (
        abs(
            sum(
                x1 * y2 - x2 * y1
                for (x1, y1), (x2, y2) in zip(points, points[1:] + points[:1], strict=True)
            )
        )
        / 2
    )


def main() -> None:
    topo = json.loads(Path(sys.argv[1]).read_text("utf-8"))
    arcs = decode_arcs(topo)
    rings = []
    for geometry in topo["objects"]["land"]["geometries"]:
        polygons = geometry["arcs"] if geometry["type"] == "MultiPolygon" else [geometry["arcs"]]
        for polygon in polygons:
            for indexes in polygon:
                points = ring(arcs, indexes)
                if area(points) < MIN_AREA:
                    continue
                points = simplify(points, TOLERANCE)
                flat: list[int] = []
                px = py = 0
                for x, y in points:
                    qx, qy = round(x * 10), round(y * 10)
                    if flat and qx == px and qy == py:
                        continue
                    flat += [qx - px, qy - py] if flat else [qx, qy]
                    px, py = qx, qy
                if len(flat) >= 8:
                    rings.append(flat)
    doc = {
        "source": "Natural Earth 1:110m land, v4.1.0 (public domain), via world-atlas 2.0.2",
        "unit": "0.1 degree; each ring: lon, lat, then deltas",
        "rings": rings,
    }
    OUT.write_text(json.dumps(doc, separators=(",", ":")) + "\n", "utf-8")
    print(f"{len(rings)} rings, {OUT.stat().st_size:,} bytes -> {OUT}")


if __name__ == "__main__":
    main()
