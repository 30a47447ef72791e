"""Headless Chromium for the tests and scripts that check an HTML page: load a local file, collect
what went wrong (console errors, uncaught exceptions, failed requests, any request that leaves
the machine), look into the page, save a full-page screenshot.

Debian's ``chromium`` (``.ci/run`` installs it when missing), driven by Playwright with
``executable_path`` and the flags of DESIGN.md; Playwright never downloads a browser here. Every
request other than the page itself and ``data:``/``blob:`` URLs is recorded; one that would leave
the machine (http, https, ws, ...) is aborted and counted as failed, so a page that needs the
network fails its check instead of passing on a developer's laptop.

Imported as ``from _chromium import ...`` (a script's own folder is on ``sys.path``; the tests'
``chromium`` fixture puts it there). Standard library at module level; Playwright where a
browser starts.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

#: The flags DESIGN.md names for a headless Chromium on these machines (a fresh profile comes
#: from Playwright, which gives every launch its own temporary user-data-dir).
FLAGS = ("--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--disable-dev-shm-usage")
#: Binary names tried on the PATH, then Debian's real binary behind its wrapper script.
_NAMES = ("chromium", "chromium-browser")
_DEBIAN = Path("/usr/lib/chromium/chromium")
#: URL schemes that stay inside the page: allowed and not counted as requests.
_INLINE = ("data:", "blob:", "about:")
TIMEOUT_MS = 30_000


class ChromiumUnavailable(RuntimeError):
    """No Chromium binary here (neither ``chromium`` on the PATH nor Debian's /usr/lib/chromium)."""


def chromium_binary() -> Path | None:
    """Debian's Chromium: from the PATH, else /usr/lib/chromium/chromium; None without."""
    for name in _NAMES:
        found = shutil.which(name)
        if found:
            return Path(found)
    return _DEBIAN if _DEBIAN.exists() else None


@dataclass
class PageLoad:
    """What loading one page gave.

    Attributes:
        url: The page's URL (``file://...``).
        console_errors: ``console.error`` messages (and the browser's own error lines, such as a
            resource that failed to load), in order.
        page_errors: Uncaught JavaScript exceptions.
        requests: Every request the page made besides itself (``data:`` and ``blob:`` URLs excepted).
        failed_requests: Requests that failed, each ``URL: reason``; an external one is aborted
            here and always listed.
        probe: What the ``probe`` script returned (None without one).
        screenshot: The full-page PNG, when one was asked for.
        title: The document's title.
    """

    url: str
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    probe: Any = None
    screenshot: Path | None = None
    title: str = ""

    @property
    def problems(self) -> list[str]:
        """Everything that went wrong, one line each (empty: the page loaded cleanly)."""
        return ([f"console error: {m}" for m in self.console_errors] + [f"exception: {m}" for m in self.page_errors]
                + [f"failed request: {m}" for m in self.failed_requests])


class Browser:
    """A running headless Chromium (see :func:`chromium`); :meth:`load` opens one page at a time."""

    def __init__(self, browser):
        self._browser = browser
        self.version = browser.version

    def load(self, path: str | Path, *, screenshot: str | Path | None = None, probe: str | None = None,
             width: int = 1280, height: int = 900, media: str = "screen", pdf: str | Path | None = None) -> PageLoad:
        """Load the local file ``path`` and wait until it and its resources are loaded.

        Args:
            path: An HTML file.
            screenshot: Save a full-page PNG here.
            probe: A JavaScript function source, ``() => ...``, evaluated in the page after load;
                its JSON-able result is :attr:`PageLoad.probe`.
            width, height: The viewport, CSS pixels.
            media: ``screen`` or ``print`` (the CSS media the page is rendered for).
            pdf: Print the page to this PDF (A4; print media, whatever ``media`` says).
        """
        url = Path(path).resolve().as_uri()
        result = PageLoad(url=url)
        context = self._browser.new_context(viewport={"width": width, "height": height}, java_script_enabled=True)
        try:
            page = context.new_page()
            page.set_default_timeout(TIMEOUT_MS)

            def route(request_route):
                request = request_route.request
                target = request.url
                if target.startswith(_INLINE) or target == url:
                    return request_route.continue_()
                result.requests.append(target)
                if not target.startswith("file:"):
                    result.failed_requests.append(f"{target}: external request blocked (the page must be "
                                                  "self-contained)")
                    return request_route.abort("blockedbyclient")
                return request_route.continue_()

            def failed(request):
                if not request.url.startswith("file:") or request.url == url:
                    return  # external ones are listed when blocked; the page itself fails page.goto
                result.failed_requests.append(f"{request.url}: {request.failure}")

            page.route("**/*", route)
            page.on("requestfailed", failed)
            page.on("console", lambda message: result.console_errors.append(message.text)
                    if message.type == "error" else None)
            page.on("pageerror", lambda error: result.page_errors.append(str(error)))
            page.emulate_media(media=media)
            page.goto(url, wait_until="load")
            page.wait_for_load_state("networkidle")
            result.title = page.title()
            if probe is not None:
                result.probe = page.evaluate(probe)
            if screenshot is not None:
                result.screenshot = Path(screenshot)
                result.screenshot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(result.screenshot), full_page=True)
            if pdf is not None:
                Path(pdf).parent.mkdir(parents=True, exist_ok=True)
                page.pdf(path=str(pdf), format="A4", print_background=True)
        finally:
            context.close()
        return result


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    """Start Debian's Chromium headless (Playwright, ``executable_path``), yield a :class:`Browser`,
    stop it, also on error.

    Raises:
        ChromiumUnavailable: no Chromium binary is installed.
    """
    binary = chromium_binary()
    if binary is None:
        raise ChromiumUnavailable("Chromium is not installed: no chromium on the PATH nor /usr/lib/chromium/chromium "
                                  "(.ci/run installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="greenkfp-chromium-") as downloads, sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(binary), args=list(FLAGS), headless=True,
                                         downloads_path=downloads, timeout=TIMEOUT_MS)
        try:
            yield Browser(browser)
        finally:
            browser.close()
