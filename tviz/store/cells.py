"""Turning what a column holds into what the dataclasses promise: SQL conditions for numbers
and times, and lenient decoding of text, numbers and JSON (nothing in the file is trusted).
"""

from __future__ import annotations

import json
import math
from typing import Any

from tviz.store.data import _NONFINITE, MAX_CONFIG_DEPTH, MAX_TIME

_NUMBER = "typeof({0}) IN ('integer', 'real')"
_TIME = f"typeof({{0}}) IN ('integer', 'real') AND {{0}} >= 0 AND {{0}} < {MAX_TIME:.0f}"
# A metrics or summaries cell as (value, text): a number in `value`, anything else as text.
_CELL = (
    f"CASE WHEN {_NUMBER.format('value')} THEN CAST(value AS REAL) END,"
    f" CASE WHEN {_NUMBER.format('value')} THEN NULL ELSE CAST(COALESCE(text, value) AS TEXT) END"
)


def _lenient_text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def _time(value: Any) -> float | None:
    """Unix seconds a page can show, else None."""
    if isinstance(value, (int, float)) and 0 <= value < MAX_TIME:
        return value
    return None


def _number(value: Any) -> float | None:
    return value if isinstance(value, (int, float)) else None


def _count(value: Any) -> int:
    """A sum of counts as an int (0 when it is not a finite number)."""
    return int(value) if isinstance(value, (int, float)) and math.isfinite(value) else 0


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _too_deep(text: str | bytes) -> str:
    return f"(JSON nested too deep to show: {len(text):,} characters)"


def _json(text: Any) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None
    except RecursionError:  # nested thousands deep
        return _too_deep(text)
    except TypeError:  # a number where JSON text belongs: shown as it is
        return text


def _json_dict(text: Any, key: str | None = None) -> dict[str, Any]:
    """A JSON object; any other value under `key` (None: left out)."""
    value = _json(text)
    if isinstance(value, dict):
        return value
    return {} if value is None or key is None else {key: value}


def _bounded(value: Any, depth: int = MAX_CONFIG_DEPTH) -> Any:
    """`value` with what is nested deeper than `depth` levels replaced by a short note."""
    if isinstance(value, (dict, list)) and value:
        if depth <= 0:
            return "(nested too deep to show)"
        if isinstance(value, dict):
            return {k: _bounded(v, depth - 1) for k, v in value.items()}
        return [_bounded(v, depth - 1) for v in value]
    return value


def _cell(value: float | None, text: str | None) -> float | str | None:
    if value is not None:
        return value
    if text in _NONFINITE:
        return _NONFINITE[text]
    return text
