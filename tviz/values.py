"""Turning any Python value into data that SQLite, JSON and a page can hold.

A training loop hands tviz whatever it has: numpy scalars, 0-d tensors, dataclasses, pydantic
models, enums, Paths, NaN and infinities, text with lone surrogates from a tokenizer. The writer
(`tviz.writer`) turns them into column values; the renderer (`tviz.render`) turns what it reads
back into page JSON. Both use these functions, so that a value means the same on either side and
the read side does not depend on the writer's module.

A value that cannot be kept as what it claims to be (a "number" that is NaN or text, a "list"
that is a dict) becomes None, text or JSON; the caller decides where it goes.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import re
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

__all__ = [
    "NONFINITE_TEXTS",
    "clean_text",
    "finite_number",
    "json_text",
    "jsonable",
    "metric_cell",
    "nonfinite_text",
    "plain_scalar",
]

_SURROGATES = re.compile("[\ud800-\udfff]")
_NONFINITE_TEXT = {math.inf: "inf", -math.inf: "-inf"}
# What `nonfinite_text` gives: text that stands for a number JSON cannot hold.
NONFINITE_TEXTS = frozenset({"nan", "inf", "-inf"})


def plain_scalar(value: Any) -> Any:
    """numpy scalars, 0-d tensors and the like -> Python scalars; others unchanged."""
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    item = getattr(value, "item", None)
    if callable(item):
        try:
            return item()
        except Exception:
            pass
    return value


def finite_number(value: Any) -> int | float | None:
    """`value` as a finite number (a numpy scalar or 0-d tensor read as one), else None.

    For a REAL column or a number on a page: NaN, infinities, ints too large for a double, text
    and anything else become None (SQLite lets any column hold text or blobs, so the read side
    meets those too). A bool counts as the number 0 or 1, as it does in the metrics table.
    """
    value = plain_scalar(value)
    if isinstance(value, (bool, int, float)):
        try:
            return value if math.isfinite(value) else None
        except OverflowError:
            return None
    return None


def nonfinite_text(number: float) -> str:
    """ "nan", "inf" or "-inf": how a number JSON cannot hold is kept as text (`tviz.store`
    reads these back)."""
    return _NONFINITE_TEXT.get(number, "nan")


def metric_cell(value: Any) -> tuple[float | None, str | None]:
    """(value, text) for the metrics table; see schema.V1_DDL."""
    kind = type(value)
    if kind is not float and kind is not int:  # the common case skips all this
        value = plain_scalar(value)
        if value is None:
            return None, None
        if isinstance(value, str):
            return None, clean_text(value)
        if not isinstance(value, (bool, int, float)):
            return None, json_text(value)
    try:
        number = float(value)
    except OverflowError:  # an int too large for a double: keep its digits
        return None, str(value)
    if math.isfinite(number):
        return number, None
    return None, nonfinite_text(number)


def clean_text(text: Any) -> str | None:
    """Text SQLite and a page can hold: lone surrogates (from tokenizers) become U+FFFD."""
    if text is None:
        return None
    if not isinstance(text, str):
        text = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates from a tokenizer: SQLite would refuse them
        text = _SURROGATES.sub("\ufffd", text)
    return text


# Values that shared (not cyclic) parts of one value may add when written out again: a
# graph that holds each level twice doubles at every level, and is cut past this many.
SHARED_CAP = 100_000
_MAX_DEPTH = 64
_CONTAINERS = (dict, list, tuple)


def jsonable(value: Any, _depth: int = 0) -> Any:
    """Any value as plain JSON data: dataclasses, chz and pydantic models, enums, Paths, numpy.

    NaN and infinities become None (JSON has no such numbers), tuples and sets lists, mapping
    keys strings, and string values lose their lone surrogates (`json_text` cleans its whole
    result, keys too). A chz object (tinker-cookbook's configs) is its fields, as `chz.asdict`
    gives them. The result is a tree that took time linear in the value's size: a reference
    back to an object being converted (a parent pointer, a dict that holds itself) becomes the
    note "<cycle: T>"; an object referred to from several places is written out in full each
    time, until sharing has added SHARED_CAP values, then cut to "<shared, cut: T>"; nesting past
    64 levels is cut to "<nested too deep: T>".
    """
    return _Walk().convert(value, _depth)


class _Walk:
    """One conversion: the objects on the way down (cycles) and those met before (sharing)."""

    __slots__ = ("on_path", "seen", "left", "sharing")

    def __init__(self) -> None:
        self.on_path: set[int] = set()
        # id -> object for every object converted so far; holding them keeps each id unique
        # while the conversion runs (a temporary one, say a model_dump() dict, is not freed
        # and its id not reused).
        self.seen: dict[int, Any] = {}
        self.left = SHARED_CAP  # values shared parts may still add
        self.sharing = 0  # > 0 while writing out an object a second time

    def convert(self, value: Any, depth: int) -> Any:
        if self.sharing:
            self.left -= 1
            if self.left < 0:
                return f"<shared, cut: {type(value).__name__}>"
        if depth > _MAX_DEPTH:
            return f"<nested too deep: {type(value).__name__}>"
        # Plain JSON data first, by exact type: a page's data is thousands of these, and the
        # protocol checks below would make it several times slower. Same results as below.
        kind = type(value)
        if kind is str:
            return clean_text(value)
        if kind is float:
            return value if math.isfinite(value) else None
        if kind is int or kind is bool or value is None:
            return value
        if kind is dict or kind is list or kind is tuple:
            return self.composite(value, depth)
        value = plain_scalar(value)
        if value is None or isinstance(value, (bool, int)):
            return value
        if isinstance(value, str):
            return clean_text(value)
        if isinstance(value, float):
            return value if math.isfinite(value) else None
        if isinstance(value, enum.Enum):
            return self.convert(value.value, depth + 1)
        if isinstance(value, PurePath):
            return str(value)
        if isinstance(value, bytes):
            return value.decode("utf-8", "replace")
        return self.composite(value, depth)

    def composite(self, value: Any, depth: int) -> Any:
        """A value made of other values: met on the way down is a cycle, met before shared."""
        key = id(value)
        if key in self.on_path:
            return f"<cycle: {type(value).__name__}>"
        shared = key in self.seen
        if shared:
            self.sharing += 1
        else:
            self.seen[key] = value
        self.on_path.add(key)
        try:
            return self.parts(value, depth + 1)
        finally:
            self.on_path.discard(key)
            if shared:
                self.sharing -= 1

    def parts(self, value: Any, depth: int) -> Any:
        convert = self.convert
        kind = type(value)
        if kind is dict:
            return {str(k): convert(v, depth) for k, v in value.items()}
        if kind is list or kind is tuple:
            return [convert(v, depth) for v in value]
        if isinstance(value, Mapping):
            return {str(k): convert(v, depth) for k, v in value.items()}
        chz_fields = getattr(type(value), "__chz_fields__", None)
        if isinstance(chz_fields, Mapping):  # a chz object: its fields, as chz.asdict has them
            return {str(name): convert(getattr(value, name, None), depth) for name in chz_fields}
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {
                f.name: convert(getattr(value, f.name), depth) for f in dataclasses.fields(value)
            }
        for method in ("model_dump", "to_dict", "dict"):  # pydantic v2, others, pydantic v1
            dump = getattr(value, method, None)
            if callable(dump) and not isinstance(value, type):
                try:
                    return convert(dump(), depth)
                except Exception:
                    pass
        tolist = getattr(value, "tolist", None)
        if callable(tolist):
            return convert(tolist(), depth)
        if isinstance(value, (list, tuple, set, frozenset)):
            return [convert(v, depth) for v in value]
        if callable(value):
            return f"{getattr(value, '__module__', '')}.{getattr(value, '__qualname__', value)}"
        if hasattr(value, "__dict__"):
            return {k: convert(v, depth) for k, v in vars(value).items() if not k.startswith("_")}
        return str(value)


def json_text(value: Any) -> str | None:
    """`value` as the JSON text of a database column (None stays None, i.e. NULL).

    Strict JSON (NaN and infinities as null), so that SQLite's json functions and a browser's
    JSON.parse read it; lone surrogates replaced. Plain data nested at most two levels (token
    lists, logprobs, turns) is dumped as it is; anything else goes through `jsonable` first,
    which cuts cycles and bounds shared parts. (A page's JSON is `tviz.render.embed.dumps`.)
    """
    if value is None:
        return None
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        value = tolist()
    if not _shallow(value):
        return clean_text(json.dumps(jsonable(value), ensure_ascii=False))
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = json.dumps(jsonable(value), ensure_ascii=False)
    else:
        if "NaN" in text or "Infinity" in text:  # rare: redo, turning them into null
            text = json.dumps(jsonable(value), ensure_ascii=False)
    return clean_text(text)


def _shallow(value: Any) -> bool:
    """True if json.dumps may take `value` as it is: no container inside a container inside
    it, so sharing cannot make its text grow past the product of its lengths."""
    if not isinstance(value, _CONTAINERS):
        return True
    items = value.values() if isinstance(value, dict) else value
    kinds = set(map(type, items))  # at C speed: a list of 500 floats is one kind
    if not any(issubclass(k, _CONTAINERS) for k in kinds):
        return True
    for item in items:
        if isinstance(item, _CONTAINERS):
            inner = item.values() if isinstance(item, dict) else item
            if any(issubclass(k, _CONTAINERS) for k in set(map(type, inner))):
                return False
    return True
