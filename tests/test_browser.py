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


def draw_all(browser) -> list[list]:  # noqa: ANN001
    """Open every section, scroll each figure into view (figures are drawn when seen), wait until all are
    drawn; each figure's [label, drawn, svg width, svg height]."""
    from selenium.webdriver.support.ui import WebDriverWait

    browser.execute_script("document.querySelectorAll('details').forEach(d => d.open = true);")
    for chart in browser.find_elements("css selector", "div.chart"):  # one at a time, as a reader scrolls
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", chart)
        WebDriverWait(browser, 30).until(lambda b: "drawn" in chart.get_attribute("class"))
    return browser.execute_script(
        "return Array.from(document.querySelectorAll('div.chart')).map(c => { const s = c.querySelector('svg');"
        " return [c.getAttribute('aria-label'), c.classList.contains('drawn'), s ? s.getBoundingClientRect().width : 0,"
        " s ? s.getBoundingClientRect().height : 0]; });")


def console_problems(browser) -> list:  # noqa: ANN001
    """Errors, and vega's warnings (a figure drawn from a spec it had to correct)."""
    return [e for e in browser.get_log("browser") if e["level"] == "SEVERE" or "WARN" in e["message"]]


def test_report_renders_every_figure_without_console_errors(real_report, browser, tmp_path):
    browser.get(real_report.as_uri())
    assert "widthdepth report" in browser.title
    assert browser.find_element("css selector", "ul.answer li").text  # the answer, first
    figures = draw_all(browser)
    assert len(figures) == 2 + 2 * 4  # two phase diagrams; per experiment frontier, heat map, selection, latency
    for label, drawn, width, height in figures:
        assert drawn and width > 200 and height > 150, f"figure {label!r} was not drawn"
    resources = browser.execute_script("return performance.getEntriesByType('resource').map(r => r.name);")
    assert [r for r in resources if not r.startswith(("data:", "file:"))] == []  # it works offline
    assert console_problems(browser) == []
    assert browser.save_screenshot(str(tmp_path / "report.png"))


def test_hover_shows_a_cell_s_numbers_and_the_controls_redraw(real_report, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(real_report.as_uri())
    draw_all(browser)
    heatmap = next(h for h in browser.find_elements("css selector", "div.chart[aria-label^='heatmap']")
                   if len(h.find_elements("css selector", "input[type=radio]")) > 1)  # search: has a verifier
    cell = heatmap.find_element("css selector", "g.mark-rect path")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", heatmap)
    ActionChains(browser).move_to_element(cell).perform()
    tip = WebDriverWait(browser, 10).until(lambda b: b.find_element("id", "vg-tooltip-element"))
    WebDriverWait(browser, 10).until(lambda b: "95% interval" in tip.text)
    for shown in ("w (chains)", "d (rounds)", "aggregator", "accuracy", "generated tokens", "FLOPs", "serial tokens"):
        assert shown in tip.text
    # the aggregator radio buttons redraw the heat map with the other aggregator's cells
    other = heatmap.find_element("css selector", "input[type=radio]:not(:checked)")
    browser.execute_script("arguments[0].click();", other)
    ActionChains(browser).move_by_offset(0, -200).perform()  # away, then back onto the cell
    ActionChains(browser).move_to_element(heatmap.find_element("css selector", "g.mark-rect path")).perform()
    wanted = other.get_attribute("value")
    WebDriverWait(browser, 10).until(lambda b: wanted in b.find_element("id", "vg-tooltip-element").text)
    # the cost-unit menu redraws a frontier in that unit
    frontier = browser.find_element("css selector", "div.chart[aria-label^='frontier']")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", frontier)
    from selenium.webdriver.support.ui import Select

    Select(frontier.find_element("css selector", "select")).select_by_value("serial_tokens")
    WebDriverWait(browser, 10).until(lambda b: "budget per problem (serial tokens" in frontier.text)
    assert console_problems(browser) == []


def test_the_adaptive_allocation_section_renders(browser, tmp_path):
    """`allocate eval` adds its figure and table to the report of a built-in reasoner run."""
    from widthdepth.cli import main
    from widthdepth.config import RunConfig

    out = tmp_path / "latent"
    run(RunConfig(model="builtin:reasoner", tasks=["chain:L=1", "chain:L=4", "search:kind=subset,n=6"],
                  plans=["grid:8x4"], problems=24, seed=2, out=str(out)))
    assert main(["allocate", "eval", str(out), "--folds", "3"]) == 0
    browser.get((out / "report.html").as_uri())
    figures = {label: (drawn, width, height) for label, drawn, width, height in draw_all(browser)}
    drawn, width, height = figures["adaptive allocation"]
    assert drawn and width > 300 and height > 200
    heading = [h for h in browser.find_elements("css selector", "h2") if h.text == "Adaptive allocation"]
    assert heading
    assert console_problems(browser) == []
    assert browser.save_screenshot(str(tmp_path / "allocation.png"))


def test_a_serve_folder_renders_its_gold_free_page(browser, tmp_path):
    """Requests answered by the serve engine (in process, the real SmolLM2): the folder's report is the
    served-traffic page, drawn without errors, saying first that there is no accuracy to show."""
    from widthdepth.backends import BackendOptions, load_backend
    from widthdepth.serve import Engine, Limits, ServeSettings
    from widthdepth.serve.requests import parse_request

    settings = ServeSettings(model="llamacpp:smollm2-135m", out=str(tmp_path / "served"),
                             limits=Limits(plan="grid:2x1", max_tokens=12), context_length=1024)
    engine = Engine(settings, load_backend(settings.model, BackendOptions(threads=2, context_length=1024)))
    try:
        asks = [{"model": "m", "messages": [{"role": "user", "content": f"What is {i} + 1?"}],
                 "widthdepth": {"plan": plan}} for i, plan in enumerate(["parallel:2", "grid:2x2", "early:3"] * 2)]
        jobs = [engine.submit(parse_request(body, "chat", settings.limits)) for body in asks]
        assert all(job.future.result(timeout=300).choices[0].text for job in jobs)
    finally:
        engine.close()
    paths = write_report(tmp_path / "served")
    assert set(paths) == {"report", "served"}
    browser.get(paths["report"].as_uri())
    assert "no gold answers" in browser.find_element("css selector", "p.warning").text
    rows = browser.find_elements("css selector", "tbody tr")
    assert sorted(r.find_element("css selector", "td").text for r in rows) == ["early:3", "grid:2x1", "grid:2x2"]
    figures = draw_all(browser)
    assert len(figures) == 1 and figures[0][1] and figures[0][2] > 200
    assert console_problems(browser) == []
