"""The headless-Chromium helper (scripts/_chromium.py) catches what a report page can get wrong:
console errors, uncaught exceptions, external and missing resources; and it saves screenshots."""

from __future__ import annotations

import struct
from pathlib import Path


def png_size(path: Path) -> tuple[int, int]:
    """Width and height of a PNG, from its IHDR chunk."""
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def page(tmp_path: Path, body: str, name: str = "page.html") -> Path:
    path = tmp_path / name
    path.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>t</title></head><body>{body}</body></html>",
                    encoding="utf-8")
    return path


def test_a_clean_page_loads_without_problems_and_gets_a_full_page_screenshot(chromium, tmp_path):
    tall = "".join(f"<p style='height:100px'>row {i}</p>" for i in range(30))  # ~3,000 px: taller than the viewport
    shot = tmp_path / "shots" / "clean.png"
    result = chromium.load(page(tmp_path, f"<svg width='10' height='10' role='img'><title>x</title></svg>{tall}"),
                           screenshot=shot, probe="() => document.querySelectorAll('svg').length")
    assert result.problems == [] and result.requests == []
    assert result.probe == 1 and result.title == "t"
    width, height = png_size(shot)
    assert width == 1280 and height > 2500  # the whole page, not the 900 px viewport


def test_console_errors_and_uncaught_exceptions_are_reported(chromium, tmp_path):
    result = chromium.load(page(tmp_path, "<script>console.error('plot failed'); undefinedFunction();</script>"))
    assert result.console_errors == ["plot failed"]
    assert len(result.page_errors) == 1 and "undefinedFunction" in result.page_errors[0]
    assert len(result.problems) == 2


def test_an_external_request_is_blocked_and_counted_as_failed(chromium, tmp_path):
    result = chromium.load(page(tmp_path, "<img src='https://cdn.example.com/logo.png' alt='logo'>"
                                          "<script src='http://127.0.0.1:9/plotly.js'></script>"))
    assert result.requests == ["https://cdn.example.com/logo.png", "http://127.0.0.1:9/plotly.js"]
    assert len(result.failed_requests) == 2
    assert all("external request blocked" in line for line in result.failed_requests)


def test_a_missing_local_resource_is_a_failed_request(chromium, tmp_path):
    result = chromium.load(page(tmp_path, "<img src='missing.png' alt='gone'>"))
    assert result.requests == [(tmp_path / "missing.png").as_uri()]
    assert len(result.failed_requests) == 1 and "missing.png" in result.failed_requests[0]


def test_data_urls_are_part_of_the_page_not_requests(chromium, tmp_path):
    pixel = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==")
    result = chromium.load(page(tmp_path, f"<img src='{pixel}' alt='dot'>"))
    assert result.problems == [] and result.requests == []


def test_print_media_and_pdf(chromium, tmp_path):
    path = page(tmp_path, "<style>@media print {.screen-only {display:none}}</style><p class='screen-only'>nav</p>"
                          "<p>body</p>")
    probe = "() => getComputedStyle(document.querySelector('.screen-only')).display"
    assert chromium.load(path, probe=probe).probe == "block"
    printed = chromium.load(path, probe=probe, media="print", pdf=tmp_path / "page.pdf")
    assert printed.probe == "none"
    assert (tmp_path / "page.pdf").read_bytes()[:5] == b"%PDF-"
