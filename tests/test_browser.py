"""A report of a real SmolLM2 run renders in headless Chromium: every figure loads, no console errors."""

from __future__ import annotations

import shutil
import tempfile

import pytest

from widthdepth.report import write_report
from widthdepth.runner import run

pytestmark = [pytest.mark.model, pytest.mark.browser]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def real_report(tmp_path_factory):
    from widthdepth.config import RunConfig

    out = tmp_path_factory.mktemp("real") / "run"
    config = RunConfig(model="llamacpp:smollm2-135m", tasks=["chain:L=1", "search"], plans=["grid:3x2"],
                       problems=3, max_tokens=40, seed=5, out=str(out), threads=2, context_length=1024)
    run(config)
    return write_report(out)["report"]


@pytest.fixture
def browser():
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("headless Chromium not found: install Debian's chromium and chromium-driver "
                    "(.ci/run does) to check the report in a browser")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tempfile.mkdtemp()}", "--window-size=1200,900"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def test_report_renders_every_figure_without_console_errors(real_report, browser, tmp_path):
    browser.get(real_report.as_uri())
    images = browser.execute_script(
        "return Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth, i.naturalHeight]);")
    assert len(images) >= 1 + 2 * 4  # a phase diagram, and per experiment frontier, heatmap, selection, latency
    for alt, complete, width, height in images:
        assert complete and width > 200 and height > 150, f"figure {alt!r} did not load"
    assert "widthdepth report" in browser.title
    assert browser.find_element("css selector", "ul.verdict li").text
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []
    assert browser.save_screenshot(str(tmp_path / "report.png"))


def test_the_adaptive_allocation_section_renders(browser, tmp_path):
    """`allocate eval` adds its figure and table to the report of a built-in reasoner run."""
    from widthdepth.cli import main
    from widthdepth.config import RunConfig

    out = tmp_path / "latent"
    run(RunConfig(model="builtin:reasoner", tasks=["chain:L=1", "chain:L=4", "search:kind=subset,n=6"],
                  plans=["grid:8x4"], problems=24, seed=2, out=str(out)))
    assert main(["allocate", "eval", str(out), "--folds", "3"]) == 0
    browser.get((out / "report.html").as_uri())
    figure = browser.execute_script(
        "const i = Array.from(document.images).find(i => i.alt === 'adaptive allocation');"
        "return i ? [i.complete, i.naturalWidth, i.naturalHeight] : null;")
    assert figure is not None and figure[0] and figure[1] > 300 and figure[2] > 200
    heading = [h for h in browser.find_elements("css selector", "h2") if h.text == "Adaptive allocation"]
    assert heading
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []
    assert browser.save_screenshot(str(tmp_path / "allocation.png"))
