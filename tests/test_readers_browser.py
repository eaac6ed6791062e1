"""The reading tool in a real browser: headless Chromium (Debian's ``chromium`` and
``chromium-driver``) driven by Selenium, against ``study readers serve`` in a subprocess.

Skipped only when Chromium or its driver is absent (``.ci/run`` installs both). With
``STUDY_SCREENSHOTS=DIR`` the screenshots used in the README are written to DIR
(``STUDY_SCREENSHOTS=docs/img``); otherwise to the test's temporary folder.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import REPO_ROOT
from tests.readers_study import fake_model_outputs, make_study

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
                       reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver; "
                              ".ci/run installs them)"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``study readers serve`` in a subprocess; ``kill()`` sends SIGKILL, ``start()`` restarts it."""

    def __init__(self, config: Path, port: int, *, early: bool = False):
        self.config, self.port, self.early, self.proc = config, port, early, None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        cmd = [sys.executable, "-m", "study", "readers", "serve", str(self.config), "--port", str(self.port)]
        if self.early:
            cmd.append("--allow-early-aided")
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
        # the server's log goes to a file: an unread pipe would fill and stall the server
        self.log = self.config.parent / f"server-{self.port}.log"
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, env=env, cwd=self.config.parent, stdout=log, stderr=log)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                urllib.request.urlopen(self.url + "/", timeout=2)
            except urllib.error.HTTPError:
                return self  # 401: up and refusing a visitor without a login
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(self.log.read_text(errors="replace"))
                time.sleep(0.2)
        raise RuntimeError("the reading server did not start")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    from study.readers.setup import init_database

    root = tmp_path_factory.mktemp("browser")
    s = make_study(root, cases=30, seed=8)
    init = init_database(s["config"], readers_csv=s["readers"])
    import sqlite3

    cases = [r[0] for r in sqlite3.connect(init.database).execute("SELECT case_id FROM cases")]
    fake_model_outputs(s["results"], cases=cases, annotations=s["cohort"] / "annotations.json")
    return s, init


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    d = Path(os.environ.get("STUDY_SCREENSHOTS") or tmp_path_factory.mktemp("shots"))
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("chromium")
    os.environ["SE_OFFLINE"] = "true"  # never let Selenium Manager download a driver
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
              f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,900"):
        opts.add_argument(a)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
    driver.implicitly_wait(5)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def server(study):
    s, _ = study
    srv = Server(s["config"], free_port(), early=True).start()
    yield srv
    srv.stop()


def screenshot(driver, path: Path) -> None:
    """A PNG of the window, reduced to 256 colours to keep the README's images small."""
    import io

    from PIL import Image

    img = Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB")
    img.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


def body_text(driver) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.TAG_NAME, "body").text


def wait_for_position(driver, pos: int) -> None:
    from selenium.common.exceptions import (
        NoSuchElementException,
        StaleElementReferenceException,
        TimeoutException,
    )
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        WebDriverWait(driver, 10, ignored_exceptions=(StaleElementReferenceException, NoSuchElementException)).until(lambda d: d.find_elements(By.ID, "position")
                                        and d.find_element(By.ID, "position").text == str(pos))
    except TimeoutException:
        raise AssertionError(f"expected case {pos}; the page at {driver.current_url} says: {body_text(driver)[:500]}")


def image_ready(driver) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 10).until(lambda d: d.execute_script(
        "var i = document.getElementById('case-image'); return i && i.complete && i.naturalWidth > 0;"))


def read_case(driver, *, key: str, confidence: str, papules: str, marks: int, submit_key: str) -> None:
    """Grade by keyboard, confidence and count by typing, marks by mouse clicks, next by key."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    image_ready(driver)
    body = driver.find_element(By.TAG_NAME, "body")
    body.send_keys(key)
    conf = driver.find_element(By.ID, "confidence")
    conf.clear()
    conf.send_keys(confidence)
    cnt = driver.find_element(By.ID, "count-papule")
    cnt.clear()
    cnt.send_keys(papules)
    if marks:
        driver.find_element(By.ID, "mark-mode").click()
        viewer = driver.find_element(By.ID, "viewer")
        for k in range(marks):
            ActionChains(driver).move_to_element_with_offset(viewer, -40 + 30 * k, -20).click().perform()
    driver.find_element(By.ID, "save").click() if submit_key == "click" else body.send_keys(submit_key)


def check_zoom_pan_and_mark_key(driver) -> None:
    """Zoom with the button, the + key and the wheel; pan by dragging; m toggles mark mode."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    image_ready(driver)

    def transform():
        t = driver.execute_script("return document.getElementById('stage').style.transform")
        import re as _re
        tx, ty, sc = map(float, _re.fullmatch(r"translate\(([-\d.e]+)px, ?([-\d.e]+)px\) scale\(([-\d.e]+)\)", t).groups())
        return tx, ty, sc

    fit = transform()[2]
    driver.find_element(By.ID, "zoom-in").click()
    assert abs(transform()[2] / (fit * 1.5) - 1) < 1e-3  # (the browser rounds the style)
    driver.find_element(By.TAG_NAME, "body").send_keys("+")
    assert abs(transform()[2] / (fit * 2.25) - 1) < 1e-3
    viewer = driver.find_element(By.ID, "viewer")
    ActionChains(driver).scroll_to_element(viewer).scroll_from_origin(
        __import__("selenium.webdriver.common.actions.wheel_input", fromlist=["ScrollOrigin"]).ScrollOrigin
        .from_element(viewer), 0, -100).perform()
    assert transform()[2] > fit * 2.25  # the wheel zooms in
    before = transform()
    ActionChains(driver).move_to_element(viewer).click_and_hold().move_by_offset(60, 40).release().perform()
    after = transform()
    assert abs(after[0] - before[0] - 60) < 2 and abs(after[1] - before[1] - 40) < 2 and after[2] == before[2]
    mode = driver.find_element(By.ID, "mark-mode")
    assert not mode.is_selected()
    driver.find_element(By.TAG_NAME, "body").send_keys("m")
    assert mode.is_selected()
    driver.find_element(By.TAG_NAME, "body").send_keys("m")
    assert not mode.is_selected()
    driver.find_element(By.ID, "zoom-reset").click()
    assert abs(transform()[2] / fit - 1) < 1e-3


def export(study_info, tmp: Path) -> tuple[pd.DataFrame, dict]:
    import json

    from study.readers.export import export_readings

    _s, init = study_info
    export_readings(init.database, out=tmp / "r.csv", marks_out=tmp / "m.json")
    return (pd.read_csv(tmp / "r.csv", dtype=str, keep_default_na=False),
            json.loads((tmp / "m.json").read_text()))


def test_reader_reads_five_cases_reloads_and_resumes_and_the_export_equals_the_clicks(study, server, browser,
                                                                                      shots, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    _s, init = study
    browser.get(f"{server.url}/login/{init.reader_tokens['derm-a']}")
    assert "Your reading sessions" in body_text(browser)
    screenshot(browser, shots / "readers-home.png")
    browser.find_element(By.ID, "start-unaided").click()
    clicked = []  # (item id, grade, confidence, papules, marks)
    plan = [("2", "70", "3", 2, Keys.ENTER), ("1", "15", "0", 0, "n"), ("4", "95", "7", 1, "click"),
            ("3", "60", "2", 0, "n"), ("2", "45", "1", 3, Keys.ENTER)]
    for pos, (key, conf, pap, n_marks, submit) in enumerate(plan, start=1):
        wait_for_position(browser, pos)
        item = browser.current_url.rsplit("/", 1)[1]
        if pos == 3:  # reload mid-case: the same case comes back, its clock keeps running
            browser.find_element(By.TAG_NAME, "body").send_keys("1")
            time.sleep(3.0)
            browser.refresh()
            wait_for_position(browser, 3)
            assert browser.current_url.rsplit("/", 1)[1] == item
        if pos == 1:
            check_zoom_pan_and_mark_key(browser)
        read_case(browser, key=key, confidence=conf, papules=pap, marks=n_marks, submit_key=submit)
        clicked.append((item, ["I", "II", "III", "IV"][int(key) - 1], conf, pap, n_marks))
        if pos == 2:  # a screenshot of a case in progress, for the README
            wait_for_position(browser, 3)
            image_ready(browser)
            browser.find_element(By.TAG_NAME, "body").send_keys("3")
            browser.find_element(By.ID, "mark-mode").click()
            from selenium.webdriver.common.action_chains import ActionChains
            ActionChains(browser).move_to_element_with_offset(browser.find_element(By.ID, "viewer"), 10, 10) \
                .click().perform()
            screenshot(browser, shots / "readers-unaided.png")
            browser.refresh()  # (the screenshot's choices are not submitted)
    wait_for_position(browser, 6)
    # leaving and coming back resumes at the next unread case
    browser.get(server.url + "/")
    browser.find_element(By.ID, "start-unaided").click()
    wait_for_position(browser, 6)
    # the unaided page shows nothing of the model
    assert browser.find_elements(By.ID, "overlay-layer") == [] and browser.find_elements(By.ID, "model-aid") == []

    df, marks = export(study, tmp_path)
    mine = df[df["reader_id"] == "derm-a"]
    import sqlite3

    con = sqlite3.connect(init.database)
    case_of = dict(con.execute("SELECT item_id, case_id FROM items"))
    assert len(mine) == 5
    by_case = mine.set_index("case_id")
    mark_n = {m["case_id"]: len(m["marks"]) for m in marks["readings"] if m["reader_id"] == "derm-a"}
    for item, grade, conf, pap, n_marks in clicked:
        row = by_case.loc[case_of[item]]
        assert (row["grade"], row["confidence"], row["count_papule"], row["modality"], row["assessable"]) == \
            (grade, conf, pap, "unaided", "true")
        assert float(row["seconds"]) > 0
        assert mark_n.get(case_of[item], 0) == n_marks
    # time on case 3 counts from its first opening (3 s before the reload), not from the reload
    assert float(by_case.loc[case_of[clicked[2][0]], "seconds"]) >= 3.0


def test_aided_overlay_appears_only_in_the_aided_session(study, server, browser, shots):
    from selenium.webdriver.common.by import By

    from study.readers import db

    s, init = study
    con = db.connect(init.database)
    for item in db.session_items(con, "gp-c", "unaided"):  # gp-c has finished the unaided session
        db.record_view(con, item.item_id)
        db.save_answer(con, item, {"grade": "II", "confidence": 50.0, "counts": {}, "marks": [], "assessable": True,
                                   "reason": "", "comment": ""})
    browser.get(f"{server.url}/login/{init.reader_tokens['gp-c']}")
    browser.get(server.url + "/session/unaided")
    assert "every case of the unaided session" in body_text(browser)
    browser.get(server.url + "/")
    browser.find_element(By.ID, "start-aided").click()
    wait_for_position(browser, 1)
    image_ready(browser)
    rects = browser.find_elements(By.CSS_SELECTOR, "#overlay-layer rect.detection")
    case = db.item_for_reader(con, browser.current_url.rsplit("/", 1)[1], "gp-c").case_id
    dets = pd.read_parquet(s["results"] / "detections" / "vendor.parquet")
    assert len(rects) == int((dets["case_id"] == case).sum()) > 0 and rects[0].is_displayed()
    assert browser.find_element(By.ID, "model-grade").text == "II"
    screenshot(browser, shots / "readers-aided.png")
    browser.find_element(By.TAG_NAME, "body").send_keys("o")  # toggle the overlay off
    assert not browser.find_element(By.ID, "overlay-layer").is_displayed()


def test_second_readers_token_cannot_open_the_first_readers_cases_or_the_admin_page(study, server, browser, shots):
    from selenium.webdriver.common.by import By

    from study.readers import db

    _s, init = study
    con = db.connect(init.database)
    first_items = [i.item_id for i in db.session_items(con, "derm-a", "unaided")]
    browser.get(f"{server.url}/login/{init.reader_tokens['derm-b']}")
    for iid in first_items[:3]:
        browser.get(f"{server.url}/item/{iid}")
        assert "No such case in your reading list" in body_text(browser)
        browser.get(f"{server.url}/image/{iid}")
        assert "No such case" in body_text(browser)
    browser.get(f"{server.url}/admin")
    assert "not a valid admin link" in body_text(browser)
    browser.get(f"{server.url}/admin/login/{init.reader_tokens['derm-b']}")
    assert "not a valid admin link" in body_text(browser)
    browser.get(f"{server.url}/admin/login/{init.admin_token}")
    assert "Reading progress" in body_text(browser)
    assert browser.find_element(By.ID, "progress").is_displayed()
    screenshot(browser, shots / "readers-admin.png")


def test_server_killed_between_answers_loses_nothing(study, server, browser, tmp_path):
    from selenium.webdriver.common.by import By

    _s, init = study
    browser.get(f"{server.url}/login/{init.reader_tokens['derm-b']}")
    browser.get(server.url + "/session/unaided")
    answered = []
    for round_ in range(3):
        pos = int(browser.find_element(By.ID, "position").text)
        answered.append(browser.current_url.rsplit("/", 1)[1])
        read_case(browser, key="3", confidence=str(30 + round_), papules="1", marks=0, submit_key="n")
        wait_for_position(browser, pos + 1)
        server.kill()  # SIGKILL, right after the answer was acknowledged
        server.start()
        browser.get(server.url + "/session/unaided")  # the same cookie: resumes at the next unread case
        assert int(browser.find_element(By.ID, "position").text) == pos + 1
    df, _ = export(study, tmp_path)
    import sqlite3

    case_of = dict(sqlite3.connect(init.database).execute("SELECT item_id, case_id FROM items"))
    mine = df[df["reader_id"] == "derm-b"].set_index("case_id")
    for k, item in enumerate(answered):
        assert mine.loc[case_of[item], "confidence"] == str(30 + k)
