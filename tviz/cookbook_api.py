"""What tinker-cookbook asks of a logger: being an `ml_log.Logger`, and a URL for the run.

`TvizLogger` derives from `LoggerBase`. Importing `tinker_cookbook.utils.ml_log` costs more than
tviz may: it imports chz and rich, and wandb, neptune-scale and trackio whenever they are
installed (wandb alone takes most of a second). So tviz never imports it:

- if it is imported already when tviz is, `LoggerBase` is its `Logger`: a real subclass;
- else `LoggerBase` is `object`, and an import hook registers TvizLogger as a virtual subclass
  (`ml_log.Logger` is an ABC) the moment ml_log is imported, if ever. `isinstance` and
  `issubclass` then hold either way; without tinker-cookbook nothing happens at all;
- type checkers see the real base (`TYPE_CHECKING`).

`watch_url` answers tinker-cookbook's `get_logger_url()`: the cookbook sends the first URL a
logger gives to Tinker as the run's link, so tviz gives one only where `tviz watch` serves it.
"""

from __future__ import annotations

import html
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

__all__ = ["LoggerBase", "register_when_imported", "watch_url"]

ML_LOG = "tinker_cookbook.utils.ml_log"
# tviz.watch.inject.VERSION_PATH (importing tviz.watch would load the whole watch side).
VERSION_PATH = "/__tviz/version"

if TYPE_CHECKING:  # where tinker-cookbook is not installed, an unknown base: no error
    from tinker_cookbook.utils.ml_log import Logger as _CookbookLogger  # type: ignore

    LoggerBase = _CookbookLogger
else:
    _ml_log = sys.modules.get(ML_LOG)
    LoggerBase = getattr(_ml_log, "Logger", object) if _ml_log is not None else object


def register_when_imported(cls: type) -> None:
    """Make `cls` an `ml_log.Logger` now if ml_log is imported, else when it is."""
    module = sys.modules.get(ML_LOG)
    if module is not None:
        _register(module, cls)
    elif not any(isinstance(f, _RegisterHook) for f in sys.meta_path):
        sys.meta_path.insert(0, _RegisterHook(cls))


def _register(module: Any, cls: type) -> None:
    base = getattr(module, "Logger", None)
    register = getattr(base, "register", None)  # an ABC's
    if isinstance(base, type) and callable(register) and not issubclass(cls, base):
        register(cls)


class _RegisterHook:
    """A `sys.meta_path` finder that finds nothing itself: it wraps the loader of ml_log so
    that importing it registers `cls`."""

    def __init__(self, cls: type) -> None:
        self.cls = cls

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != ML_LOG:
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec = find(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _RegisteringLoader(spec.loader, self)
        return spec


class _RegisteringLoader:
    def __init__(self, loader: Any, hook: _RegisterHook) -> None:
        self.loader = loader
        self.hook = hook

    def create_module(self, spec: Any) -> Any:
        return self.loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self.loader.exec_module(module)
        try:
            _register(module, self.hook.cls)
        finally:
            if self.hook in sys.meta_path:
                sys.meta_path.remove(self.hook)

    def __getattr__(self, name: str) -> Any:  # get_source, get_filename, ... of the real one
        return getattr(self.loader, name)


# The index's data block (render/index.py): its `dbNames` are the files the site is built from.
INDEX_DATA = '<script type="application/json" id="index-data">'
# The index carries every run's headline series: read it whole, up to this much.
INDEX_LIMIT = 64_000_000


def watch_url(db_path: Path, page: str, port: int, timeout: float = 0.3) -> str | None:
    """`http://127.0.0.1:PORT/PAGE` if a `tviz watch` answers on PORT for `db_path`, else None.

    Two short requests: the version endpoint (only tviz watch has it) and the run's page there,
    or failing that the index (its data names the site's files, one or several) or the page
    shown before the first build (it names each database's path).
    """
    import http.client  # only here: most runs never ask

    def get(path: str, limit: int = 2_000_000) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            chunks, size = [], 0
            while size < limit:  # in pieces: `read(n)` may set aside n bytes at once
                chunk = response.read(min(1 << 20, limit - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
            return response.status, b"".join(chunks)
        finally:
            conn.close()

    try:
        status, body = get(f"{VERSION_PATH}?page=/{page}")
        if status != 200:
            return None
        version = json.loads(body).get("version")
        if not isinstance(version, str):
            return None
        url = f"http://127.0.0.1:{port}/{page}"
        if version != "none":  # the run's page is there
            return url
        status, body = get("/", INDEX_LIMIT)
        if status == 200 and _serves(body.decode("utf-8", "replace"), db_path):
            return url
    except (OSError, ValueError, AttributeError, http.client.HTTPException):
        return None
    return None


def _serves(index: str, db_path: Path) -> bool:
    """Whether the served `index` (the site's index, or the page shown before the first
    build) is made from `db_path`: its path in a `<code>` of the waiting page, or its name
    among the index data's `dbNames` (one name, or several for a site of several files). An
    index without that data (an older tviz) names its one file in a `<code>`."""
    absolute = Path(os.path.abspath(db_path))
    if f"<code>{html.escape(str(absolute))}</code>" in index:  # before the first build
        return True
    names = _db_names(index)
    if names is None:
        return f"<code>{html.escape(absolute.name)}</code>" in index
    return absolute.name in names


def _db_names(index: str) -> list[str] | None:
    """The index data's `dbNames`, or None where the page has none (or it cannot be read)."""
    start = index.find(INDEX_DATA)
    if start < 0:
        return None
    start += len(INDEX_DATA)
    end = index.find("</script>", start)  # the data escapes "<": its block ends here
    try:
        data = json.loads(index[start:end] if end >= 0 else index[start:])
    except ValueError:
        return None
    names = data.get("dbNames") if isinstance(data, dict) else None
    if not isinstance(names, list):
        return None
    return [n for n in names if isinstance(n, str)]
