"""The report in a real browser: headless Chromium loads every image and shows every section.

Needs Debian's ``chromium`` and ``chromedriver`` (CI installs them) and selenium; skips with the
reason otherwise. A full-page screenshot goes to the test's temporary directory and, when the
environment variable ``ANISOADA_SCREENSHOT`` names a path, there too.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from anisoada.report import SECTIONS

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
_ARGUMENTS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1400,1000",
)


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.is_file():
            pytest.skip(f"{path} not found: install Debian's chromium and chromium-driver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in _ARGUMENTS:
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def test_report_renders_with_every_image_and_section(stored_results, browser, tmp_path):
    html = (stored_results / "report.html").resolve()
    browser.get(html.as_uri())
    assert browser.execute_script("return document.readyState") == "complete"

    images = browser.execute_script(
        "return Array.from(document.images).map(i => [i.complete, i.naturalWidth,"
        " i.getAttribute('data-file')])"
    )
    assert len(images) == html.read_text().count("<img ")
    assert len(images) >= 10
    broken = [name for complete, width, name in images if not (complete and width > 0)]
    assert broken == []

    for section_id, title in SECTIONS:
        shown = browser.execute_script(
            "const s = document.getElementById(arguments[0]);"
            "return s === null ? null : [s.offsetHeight, s.querySelector('h2').textContent];",
            section_id,
        )
        assert shown is not None, f"section {section_id} missing"
        height, heading = shown
        assert height > 0 and heading.startswith(title)
    # Every table of contents entry leads to a section.
    targets = browser.execute_script(
        "return Array.from(document.querySelectorAll('nav.toc a')).map(a => a.hash.slice(1))"
    )
    assert targets == [section_id for section_id, _ in SECTIONS]
    # The page itself never scrolls sideways (wide tables scroll inside their own box).
    overflow = browser.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0

    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1400, min(int(height), 16000))
    screenshot = tmp_path / "report.png"
    assert browser.save_screenshot(str(screenshot))
    assert screenshot.read_bytes().startswith(b"\x89PNG")
    destination = os.environ.get("ANISOADA_SCREENSHOT")
    if destination:
        Path(destination).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(screenshot, destination)
