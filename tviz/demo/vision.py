"""The geo-guessing run's groups: a small generated photo of a city per group, guesses of where
it was taken that tighten as the model learns, rewarded by their distance from the truth."""

from __future__ import annotations

import math
import os
import random
import struct
import zlib
from pathlib import Path
from typing import Any

from tviz.demo.policy import skill_at, token_ids, token_pieces
from tviz.records import Rollout, Trajectory

_IMAGE_WIDTH, _IMAGE_HEIGHT = 96, 64
_CITIES = (
    ("Paris", "France", 48.8566, 2.3522),
    ("Lisbon", "Portugal", 38.7223, -9.1393),
    ("Tokyo", "Japan", 35.6762, 139.6503),
    ("Nairobi", "Kenya", -1.2921, 36.8219),
    ("Buenos Aires", "Argentina", -34.6037, -58.3816),
    ("Reykjavik", "Iceland", 64.1466, -21.9426),
    ("Sydney", "Australia", -33.8688, 151.2093),
    ("Toronto", "Canada", 43.6532, -79.3832),
    ("Mumbai", "India", 19.0760, 72.8777),
    ("Cairo", "Egypt", 30.0444, 31.2357),
    ("Mexico City", "Mexico", 19.4326, -99.1332),
    ("Oslo", "Norway", 59.9139, 10.7522),
)


def write_png(path: str | os.PathLike[str], width: int, height: int, rgb: bytes) -> Path:
    """Write an 8-bit RGB PNG (stdlib only: zlib + struct)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    stride = width * 3
    raw = b"".join(b"\x00" + rgb[y * stride : (y + 1) * stride] for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9))
    png += chunk(b"IEND", b"")
    out = Path(path)
    out.write_bytes(png)
    return out


def _landscape(rng: random.Random, lat: float) -> bytes:
    """A sky, a horizon with buildings and ground: colours follow the latitude."""
    width, height = _IMAGE_WIDTH, _IMAGE_HEIGHT
    warmth = max(0.0, min(1.0, 1 - abs(lat) / 70))
    sky_top = (40 + int(60 * warmth), 90 + int(60 * warmth), 200)
    ground = (int(90 + 100 * warmth), int(120 + 40 * (1 - warmth)), int(60 + 30 * warmth))
    horizon = height // 2 + rng.randint(-6, 6)
    roofs = [horizon - rng.randint(0, 14) if rng.random() < 0.6 else horizon for _ in range(12)]
    pixels = bytearray()
    for y in range(height):
        for x in range(width):
            roof = roofs[x * len(roofs) // width]
            if y < roof:
                t = y / max(1, horizon)
                pixels += bytes(int(c + (230 - c) * t) for c in sky_top)
            elif y < horizon:
                pixels += bytes((120, 110, 105) if (x // 3 + y // 4) % 5 else (230, 210, 120))
            else:
                shade = rng.randint(-12, 12)
                pixels += bytes(max(0, min(255, c + shade)) for c in ground)
    return bytes(pixels)


def _relative_to(path: Path, base: Path) -> str:
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return str(path)


def _haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(h)))


def vision_step(
    rng: random.Random,
    step: int,
    steps: int,
    groups: int,
    samples: int,
    image_dir: Path,
    db_dir: Path,
) -> tuple[list[Rollout], dict[str, Any]]:
    """One step of the geo-guessing run: its groups, and what they add up to (turns, action and
    observation tokens, the mean distance of the guesses).

    Image paths are stored relative to the database's folder when the images are inside it, so
    the folder can be moved or shared whole."""
    stats: dict[str, Any] = {"turns": 0, "ac_tokens": 0, "ob_tokens": 0}
    distances = []
    rollouts: list[Rollout] = []
    image_dir.mkdir(parents=True, exist_ok=True)
    for g in range(groups):
        city, country, lat, lon = _CITIES[(step * groups + g) % len(_CITIES)]
        path = image_dir / f"step{step:04d}-group{g:03d}.png"
        write_png(path, _IMAGE_WIDTH, _IMAGE_HEIGHT, _landscape(rng, lat))
        skill = skill_at(step, steps, rng.choice((0.0, 0.1, -0.1)))
        spread = 3000.0 * (1 - skill) + 40.0  # km: guesses tighten as the model learns
        trajectories: list[Trajectory] = []
        for i in range(samples):
            d_lat = rng.gauss(0, spread / 111.0)
            d_lon = rng.gauss(0, spread / (111.0 * max(0.2, math.cos(math.radians(lat)))))
            p_lat = max(-89.0, min(89.0, lat + d_lat))
            p_lon = (lon + d_lon + 180.0) % 360.0 - 180.0
            distance = _haversine_km(lat, lon, p_lat, p_lon)
            reward = round(math.exp(-distance / 2000.0), 4)
            guess = min(_CITIES, key=lambda c: _haversine_km(c[2], c[3], p_lat, p_lon))
            text = (
                f"The light, the roofs and the vegetation suggest {guess[1]}."
                f" My guess: near {guess[0]}, at ({p_lat:.2f}, {p_lon:.2f})."
            )
            pieces = token_pieces(text)
            trajectories.append(
                {
                    "trajectory_idx": i,
                    "reward": reward,
                    "output_text": text,
                    "output_tokens": token_ids(pieces),
                    "logprobs": [round(-abs(rng.gauss(0, 0.8 - 0.5 * skill)), 4) for _ in pieces],
                    "token_texts": pieces,
                    "pred_lat": p_lat,
                    "pred_lon": p_lon,
                    "distance_km": distance,
                }
            )
            distances.append(distance)
            stats["ac_tokens"] += len(pieces)
            stats["ob_tokens"] += 300
            stats["turns"] += 1
        rollouts.append(
            {
                "group_idx": g,
                "prompt_text": "Where was this photo taken? Answer with latitude and longitude.",
                "image_path": _relative_to(path.resolve(), db_dir.resolve()),
                "gt_lat": lat,
                "gt_lon": lon,
                "city": city,
                "country": country,
                "trajectories": trajectories,
            }
        )
    stats["distance_km"] = sum(distances) / len(distances)
    return rollouts, stats
