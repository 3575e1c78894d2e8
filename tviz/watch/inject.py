"""The reload script (tviz/templates/reload.js) and its injection into the pages watch serves.

The script is added at serve time, just before the page's `</body>`, so the files on disk stay
byte for byte what `tviz build` writes. Its values (the page's version, the poll interval, the
version endpoint and header, the compare endpoint) are written into its first statement as
JSON; nothing else in the file is touched. The pages' hash-only Content-Security-Policy then
gets the hash of the script as served (see `tviz.render.csp.allow_served_script`).
"""

from __future__ import annotations

import functools
import json
import re
from importlib.resources import files

from tviz.watch.compare import COMPARE_PATH, MAX_RUNS

# The endpoint the script polls for a page's version, and the header that names the version
# of a page as served (an in-place update takes it from the page it fetched).
VERSION_PATH = "/__tviz/version"
VERSION_HEADER = "X-Tviz-Version"

# The statement of reload.js that receives the values, and what may never appear in an
# inline script: the first would end the element, the second can make the HTML parser
# miss its end.
_VALUES = 'var VERSION = "", SETTINGS = {};'
_UNSAFE_IN_SCRIPT = re.compile(r"</script|<!--", re.IGNORECASE)
_BODY_END = re.compile(rb"</body\s*>", re.IGNORECASE)


@functools.cache
def _source() -> str:
    source = files("tviz").joinpath("templates", "reload.js").read_text(encoding="utf-8")
    if source.count(_VALUES) != 1 or _UNSAFE_IN_SCRIPT.search(source):
        raise RuntimeError(f"reload.js must hold `{_VALUES}` once, and no </script or <!--")
    return source


def _json(value: object) -> str:
    # Our own values, but inline in a <script>: `<` escaped all the same.
    return json.dumps(value).replace("<", "\\u003c")


def reload_script(version: str, poll_ms: int = 300) -> str:
    """The `<script>` element added to a page whose bytes have version `version`."""
    # The version is our own hex digest (or "none"), never text from the page or request.
    assert re.fullmatch(r"[0-9a-z]+", version), version
    settings = {
        "poll_ms": poll_ms,
        "endpoint": VERSION_PATH,
        "header": VERSION_HEADER,
        "compare": {"path": COMPARE_PATH, "max_runs": MAX_RUNS},
    }
    values = f"var VERSION = {_json(version)}, SETTINGS = {_json(settings)};"
    return f'<script data-tviz-watch="1">{_source().replace(_VALUES, values, 1)}</script>'


def inject_reload(page: bytes, version: str, poll_ms: int = 300) -> bytes:
    """`page` with the reload script just before its last `</body>` (or at its end)."""
    script = reload_script(version, poll_ms).encode()
    # The pages' Content-Security-Policy allows their own scripts by hash and no requests:
    # the renderer's hook adds this script's hash and `connect-src 'self'` to the served copy.
    from tviz.render.csp import allow_served_script

    page = allow_served_script(page, script)
    ends = list(_BODY_END.finditer(page[-4096:]))  # look near the end only: pages are big
    if ends:
        cut = len(page) - len(page[-4096:]) + ends[-1].start()
        return page[:cut] + script + page[cut:]
    return page + script
