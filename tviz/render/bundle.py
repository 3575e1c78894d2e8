"""Vega + Vega-Lite + vega-embed as one offline script, inlined once per page.

`vl_convert.javascript_bundle()` costs 1.3-1.9 s on its first call in a process
(docs/measurements.md), so the result is kept on disk per vl-convert and Vega-Lite version and in
memory for the life of the process.
"""

from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path

import altair as alt
import vl_convert

from tviz.render.embed import script_js


def vegalite_version() -> str:
    """The Vega-Lite major.minor altair writes specs for, e.g. "6.4"."""
    return ".".join(alt.SCHEMA_VERSION.lstrip("v").split(".")[:2])


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "tviz"


@functools.lru_cache(maxsize=1)  # the bundle never changes within a process
def vega_bundle() -> str:
    """The bundle, ready to place inside an inline `<script>` element."""
    version = vegalite_version()
    path = cache_dir() / f"vega-bundle-vlc{vl_convert.__version__}-vl{version}.js"
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        pass
    source = script_js(vl_convert.javascript_bundle(vl_version=version))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".bundle-", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(source)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only home: rebuild the bundle next process, no harm
    return source
