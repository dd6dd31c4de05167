"""The docs site as a reader sees it: built strictly, then opened in headless Chromium.

The site is built once (``mkdocs build --strict``, so a broken cross-reference
fails); the built pages must show no raw reST role and no private base
class, and in the browser no code block may scroll sideways at the site's
width (every tab of the chapter shown). Screenshots go to ``.site/shots/``.
The browser comes from Debian's ``chromium`` and ``chromium-driver``, which
``make setup`` installs; where they cannot be installed the browser test
skips and says why.
"""

from __future__ import annotations

import functools
import html
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / ".site" / "shots"
PAGES = {
    "index": "",
    "chapter": "chapter/",
    "api": "api/",
    "gallery": "porting-gallery/",
    "porting": "porting/",
    "backends": "backends/",
    "sharded": "sharded/",
    "testing": "testing/",
    "notebook": "notebook/",
}
ROLES = re.compile(r":(?:func|class|meth|attr|mod|data|exc|obj):`?\w")


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def _text(page: Path) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", page.read_text()))


@pytest.mark.parametrize("name", sorted(PAGES))
def test_built_pages_show_no_raw_roles_or_private_internals(site, name):
    text = _text(site / PAGES[name] / "index.html")
    assert not ROLES.findall(text), ROLES.findall(text)[:5]
    assert "Bases: _" not in text and "_core." not in text
    assert not re.search(r"\w::\n", text)  # a reST literal-block marker left in prose


@pytest.fixture(scope="session")
def browser(site):
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.skip(
            "no headless browser: Debian's chromium and chromium-driver are not installed "
            "(make setup installs them where apt-get can run as root)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,1000"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(driver), options=options)
    browser.base = f"http://127.0.0.1:{server.server_address[1]}/"
    yield browser
    browser.quit()
    server.shutdown()


OVERFLOW = """
for (const tab of document.querySelectorAll('.tabbed-block')) tab.style.display = 'block';
const wide = [];
for (const block of document.querySelectorAll('pre > code')) {
  if (block.clientWidth > 0 && block.scrollWidth > block.clientWidth + 1) {
    wide.push(block.innerText.split('\\n').sort((a, b) => b.length - a.length)[0]);
  }
}
return wide;
"""


@pytest.mark.parametrize("name", sorted(PAGES))
def test_code_blocks_fit_the_page_in_a_browser(browser, name):
    browser.get(browser.base + PAGES[name])
    SHOTS.mkdir(parents=True, exist_ok=True)
    height = browser.execute_script("return document.body.scrollHeight")
    browser.set_window_size(1280, min(max(height, 1000), 16000))
    browser.save_screenshot(str(SHOTS / f"{name}.png"))
    assert browser.execute_script("return document.querySelector('h1') !== null")
    wide = browser.execute_script(OVERFLOW)
    browser.set_window_size(1280, 1000)
    assert not wide, f"{len(wide)} code blocks scroll sideways on {name}; longest lines: {wide[:5]}"
    assert not ROLES.findall(browser.find_element("tag name", "body").text)


def test_the_notebook_page_shows_the_views_as_tables(browser):
    """The `_repr_html_` tables render as tables (not escaped text), with the
    shared layer marked and a parameter's histogram, and the notebook is linked."""
    browser.get(browser.base + PAGES["notebook"])
    tables = browser.execute_script("return document.querySelectorAll('article table').length")
    text = browser.find_element("tag name", "body").text
    assert tables >= 4, tables  # the model, the parameter, the load and port reports
    assert "shared with 2" in text and "histogram" in text and "<table" not in text
    assert any(bar in text for bar in "▁▂▃▄▅▆▇█")
    link = browser.execute_script("return document.querySelector('a[href$=\"chapter.ipynb\"]').href")
    assert link.endswith("chapter.ipynb")
