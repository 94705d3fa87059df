"""The dashboard in a real browser: headless Chromium (Debian's ``chromium`` and
``chromium-driver``) driven through selenium. The page loads and names its network, the
finished-task counter grows while local workers run, and clicking kill on a worker (and
confirming) turns its row into ``killed``.

The test takes a screenshot of the page; with ``RUSH_UPDATE_SCREENSHOT=1`` it is saved as
``docs/dashboard.png`` (the README's picture), else in the test's temporary directory.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

import loops
import rush
import rush.dashboard
from conftest import wait_until
from worker_helpers import SLOW

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
#: Chromium without the background connections a closed network refuses.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-background-networking", "--disable-component-update",
                  "--no-first-run", "--window-size=1440,1640", "--hide-scrollbars")


@pytest.fixture
def browser(tmp_path, monkeypatch):
    """A headless Chromium with a fresh profile; skips where there is none."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed "
                                    "(pip install -e '.[test]')")
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("no headless browser: install Debian's chromium and chromium-driver "
                    "(apt-get install -y chromium chromium-driver)")
    from selenium.webdriver.chrome.service import Service

    monkeypatch.setenv("SE_OFFLINE", "true")  # selenium must not look for drivers online
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'profile'}")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(SLOW)
    try:
        yield driver
    finally:
        driver.quit()


def number(driver, element_id: str) -> int:
    return int(driver.find_element("id", element_id).text.replace(",", "") or 0)


def row_state(driver, worker_id: str) -> str:
    """The state shown in a worker's row ("" while it has none)."""
    return driver.execute_script(
        "const row = `#workers tr[data-worker-id='${arguments[0]}']`;"
        "const cell = document.querySelector(row + ' td.state');"
        "return cell ? cell.textContent : '';", worker_id)


@pytest.mark.timeout(180)
def test_the_page_is_live_and_kills_a_worker(browser, config, network_id, rsh, tmp_path):
    crashed, = rsh.start_local_workers(loops.wl_raise_mid_task, n_workers=1)
    workers = rsh.start_local_workers(loops.wl_branin_logged, n_workers=3, pause=0.03,
                                      lgr_thresholds={"rush": "info"}, heartbeat_period=1)
    rsh.wait_for_workers(4, timeout=SLOW)
    with rush.dashboard.start(config, network_id, refresh_seconds=0.25) as server:
        browser.get(server.url)
        # the page: named on the server, then live
        assert network_id in browser.title
        assert browser.find_element("id", "network-name").text == network_id
        wait_until(lambda: browser.find_element("id", "live").text == "live", timeout=SLOW,
                   message="the event stream to open")
        # the finished-task counter grows while the workers run
        first = wait_until(lambda: number(browser, "count-finished"), timeout=SLOW,
                           message="finished tasks on the page")
        wait_until(lambda: number(browser, "count-finished") > first + 20, timeout=SLOW,
                   message="the finished-task counter to grow")
        wait_until(lambda: row_state(browser, crashed) == "lost", timeout=SLOW,
                   message="the crashed worker's row to show lost")
        # kill one worker from its row, confirming the dialog
        victim = workers[0]
        assert row_state(browser, victim) == "running"
        kill = f'#workers tr[data-worker-id="{victim}"] button.kill'
        browser.find_element("css selector", kill).click()
        alert = wait_until(lambda: _alert(browser), timeout=SLOW, message="the confirmation dialog")
        assert victim in alert.text and "Kill" in alert.text
        alert.accept()
        wait_until(lambda: row_state(browser, victim) == "killed", timeout=SLOW,
                   message="the killed worker's row")
        assert dict(zip(rsh.worker_info["worker_id"], rsh.worker_info["state"]))[victim] == "killed"
        # the rest of the page filled in: trace, tasks, log, errors
        wait_until(lambda: browser.find_elements("css selector", "#trace .scatterlayer .trace"),
                   timeout=SLOW, message="the trace plot")
        wait_until(lambda: len(browser.find_elements("css selector", "#tasks tbody tr")) == 25,
                   timeout=SLOW, message="a page of tasks")
        wait_until(lambda: "evaluation" in browser.find_element("id", "log").text, timeout=SLOW,
                   message="log records")
        assert "ZeroDivisionError" in browser.find_element("id", "errors").text
        # some seconds of throughput for the picture
        wait_until(lambda: number(browser, "count-finished") > first + 600, timeout=SLOW,
                   message="more finished tasks")
        time.sleep(1.0)  # let the charts settle before the picture (nothing to wait on)
        _screenshot(browser, tmp_path)
        severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert not severe, severe
    rsh.stop_workers("kill")


def _alert(driver):
    from selenium.common.exceptions import NoAlertPresentException

    try:
        return driver.switch_to.alert
    except NoAlertPresentException:
        return None


def _screenshot(driver, tmp_path: Path) -> None:
    path = ROOT / "docs" / "dashboard.png" if os.environ.get("RUSH_UPDATE_SCREENSHOT") \
        else tmp_path / "dashboard.png"
    path.parent.mkdir(exist_ok=True)
    driver.execute_script("window.scrollTo(0, 0)")
    assert driver.save_screenshot(str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
