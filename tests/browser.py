"""Open built pages in headless Chromium (Debian's /usr/bin/chromium) for tests.

    from browser import browser, open_page  # noqa: F401  (browser is a fixture)

    def test_x(browser, tmp_path):
        page = open_page(browser, tmp_path / "index.html")
        assert page.requests == [] and page.errors == []

`browser` is module-scoped: a test module launches Chromium once. Every page opened with
`open_page` records each network request it makes (anything not file:, data: or blob:) and
every console error or uncaught exception, so tests can assert that a report is offline and
clean. Never run `playwright install`: we use the system Chromium.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")


@dataclass
class OpenedPage:
    """A playwright page plus what it did: `requests` (non-local URLs) and `errors`."""

    page: Any
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # console warnings (Vega's, ...)

    def __getattr__(self, name: str) -> Any:  # behave like the playwright page
        return getattr(self.page, name)


def _executable() -> str | None:
    return CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium per test module (skips if playwright or Chromium is missing)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    executable = _executable()
    if executable is None:
        pytest.skip("no Chromium at /usr/bin/chromium")
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def open_page(
    browser: Any,
    path: Path | str,
    *,
    wait_ready: bool = True,
    viewport: dict[str, int] | None = None,
    timeout_ms: float = 15_000,
    **context_options: Any,
) -> OpenedPage:
    """Open `path` (a file) or a URL in a fresh context (`context_options`: playwright's, such
    as color_scheme="dark" or accept_downloads); wait for the page's `data-ready`."""
    context = browser.new_context(
        viewport=viewport or {"width": 1360, "height": 900}, **context_options
    )
    page = context.new_page()
    opened = OpenedPage(page)

    def on_request(request: Any) -> None:
        if not request.url.startswith(LOCAL_SCHEMES):
            opened.requests.append(request.url)

    def on_console(message: Any) -> None:
        if message.type == "error":
            opened.errors.append(message.text)
        elif message.type == "warning":
            opened.warnings.append(message.text)

    def on_dialog(dialog: Any) -> None:  # an alert() from injected code must be noticed
        opened.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("request", on_request)
    page.on("console", on_console)
    page.on("pageerror", lambda exc: opened.errors.append(str(exc)))
    page.on("dialog", on_dialog)
    url = Path(path).resolve().as_uri() if not str(path).startswith(("http:", "https:")) else path
    page.goto(str(url))
    if wait_ready:
        page.wait_for_selector("body[data-ready=yes]", timeout=timeout_ms)
    return opened


def close_page(opened: OpenedPage) -> None:
    opened.page.context.close()
