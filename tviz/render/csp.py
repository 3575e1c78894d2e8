"""The pages' Content-Security-Policy: only the page's own inline scripts may run.

Each page allows its executable inline scripts by their SHA-256 (computed from the page as
rendered, so the same page always gets the same policy) instead of `'unsafe-inline'`: a
`<script>` that found its way into the page any other way does not run. Data blocks
(`<script type="application/json">` and the compressed rollouts) are not executable and need
no hash. There is no `'unsafe-eval'`: the page hands Vega its expression interpreter
(vega-embed's `ast: true`), so Vega compiles no code at run time.

`tviz watch` serves the same files with a reload script added; `allow_served_script` is the
hook it uses to let that one script (and its requests to the server) through.
"""

from __future__ import annotations

import base64
import hashlib
import re

# Replaced in the rendered page by the hashes of its scripts; the template puts it in the
# policy. User text can never produce it: `<` is always escaped.
HASHES_MARKER = "<!--tviz:script-hashes-->"

# `<script>` with no attributes: our executable inline scripts. Data blocks carry a type.
_EXECUTABLE = re.compile(r"<script>(.*?)</script>", re.S)
_POLICY = re.compile(rb'(<meta http-equiv="Content-Security-Policy" content=")([^"]*)(">)')
_SCRIPT_SRC = re.compile(rb"script-src ")
_CONNECT_SRC = re.compile(rb"connect-src [^;]*")


def script_hash(source: str | bytes) -> str:
    """The CSP source for an inline script whose text is `source`, e.g. `'sha256-…'`.

    The browser hashes the script's text as parsed, after the HTML parser turned CR LF and
    CR into LF, so the same is done here.
    """
    text = source.decode("utf-8") if isinstance(source, bytes) else source
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def with_script_hashes(html: str) -> str:
    """`html` with HASHES_MARKER replaced by the hashes of its executable inline scripts."""
    if HASHES_MARKER not in html:
        return html
    hashes = " ".join(dict.fromkeys(script_hash(m.group(1)) for m in _EXECUTABLE.finditer(html)))
    return html.replace(HASHES_MARKER, hashes, 1)


def allow_served_script(page: bytes, script_tag: bytes) -> bytes:
    """`page` as `tviz watch` serves it with `script_tag` (a whole `<script …>…</script>`
    element) added: the page's policy also allows that script's code by its hash, and
    requests to the origin serving the page (`connect-src 'self'`, for the reload poll).

    The file on disk keeps its strict policy: opened from file:// it allows neither. A page
    without our policy is returned as it is.
    """
    head_end = page.find(b"</head>", 0, 65_536)
    found = _POLICY.search(page, 0, head_end if head_end >= 0 else 65_536)
    if found is None:
        return page
    body = script_tag[script_tag.index(b">") + 1 : script_tag.rindex(b"</script")]
    policy = found.group(2)
    policy = _SCRIPT_SRC.sub(b"script-src " + script_hash(body).encode() + b" ", policy, 1)
    if _CONNECT_SRC.search(policy):
        policy = _CONNECT_SRC.sub(b"connect-src 'self'", policy, 1)
    else:
        policy += b"; connect-src 'self'"
    return page[: found.start(2)] + policy + page[found.end(2) :]
