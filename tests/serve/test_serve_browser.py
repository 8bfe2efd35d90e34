"""The dashboard in a real browser: headless Chromium from the distribution's packages,
driven by Selenium through the distribution's chromedriver (no browser download).

It watches a live run: tasks go from running to completed without a reload, a log opens,
the run is cancelled; a screenshot of the live run is saved as docs/dashboard.png (the
README shows it).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.runkit import make_spec
from tests.serve.conftest import start_server, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("fake_claude")]
webdriver = pytest.importorskip("selenium.webdriver")

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "dashboard.png"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture
def browser() -> Iterator[Any]:
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("chromium and chromedriver are not installed (.ci/run installs them)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(arg)
    options.add_argument("--window-size=1440,900")
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def ok(f: str, secs: float) -> str:
    steps = [f"sleep {secs}", f"text working on {f}", f"write {f} x", f"commit add {f}", "marker"]
    return "\n".join(f"@script {step}" for step in steps)


# Read through script: the page redraws its rows on each event, so a found element may be
# replaced a moment later (a stale reference).
def text_of(driver: Any, selector: str) -> str:
    found = driver.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.textContent : '';", selector
    )
    return str(found or "").strip()


def status_of(driver: Any, task: str) -> str:
    text = text_of(driver, f'tr[data-task="{task}"] td.status')
    return text.split()[0] if text else ""


def test_dashboard_follows_a_live_run_and_cancels_it(
    browser: Any, git_repo: Path, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    root = make_spec(
        git_repo,
        [
            {"task-001": ok("a.txt", 2), "task-002": ok("b.txt", 3), "task-003": ok("c.txt", 1)},
            {"task-004": ok("d.txt", 60), "task-005": "@script sleep 1\n@script exit 3"},
        ],
        validation={1: "python -c 'import time; time.sleep(1)'"},
        deps={"task-004": ["task-001"], "task-005": ["task-002"]},
    )
    srv = start_server(tmp_path, [git_repo])
    try:
        started = srv.post("/api/v1/runs", {"dir": str(root), "max_concurrent": 2})
        assert started.status == 202, started.body
        rid = started.body["id"]
        browser.get(f"{srv.url}/#{rid}")
        wait_for(lambda: status_of(browser, "task-001") == "running", timeout=30)
        # No reload from here on: what changes comes through the event stream.
        wait_for(lambda: status_of(browser, "task-001") == "completed", timeout=60)
        wait_for(lambda: status_of(browser, "task-004") == "running", timeout=60)
        wait_for(lambda: status_of(browser, "task-005") == "failed", timeout=60)
        browser.execute_script("document.querySelector('tr[data-task=\"task-001\"]').click()")
        wait_for(lambda: "task-001" in text_of(browser, "#log"), timeout=15)
        bars = browser.find_elements(By.CSS_SELECTOR, "#timeline .tl-bar")
        assert len(bars) >= 6  # five attempts so far, and the wave 1 validation
        SCREENSHOT.parent.mkdir(exist_ok=True)
        browser.save_screenshot(str(SCREENSHOT))
        browser.find_element(By.ID, "cancel").click()
        wait_for(lambda: text_of(browser, "#run-state") == "interrupted", timeout=60)
        assert status_of(browser, "task-004") == "interrupted"
        assert srv.get(f"/api/v1/runs/{rid}").body["live"]["state"] == "interrupted"
    finally:
        srv.stop()
