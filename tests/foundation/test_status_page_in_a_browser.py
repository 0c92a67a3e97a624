"""The status page as a person uses it, in Debian's Chromium driven by Selenium, on the demo
that `make run` starts: add an event in Google from the page and see its Wix block arrive on
the page; make a conflict and resolve it; retry a dead letter. Each step also leaves a
screenshot in the test's folder, and in `SCREENSHOTS_DIR` when set (`make screenshots`)."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from harness.demo import Demo, running_demo
from harness.processes import wait_until
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.expected_conditions import staleness_of
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import Engine, create_engine, select
from sqlalchemy.orm import Session

from models import Connection, DeadLetter, DeadLetterStatus, ExternalCalendar

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
SHOTS = os.environ.get("SCREENSHOTS_DIR")  # a folder to keep the screenshots in (docs/screenshots)


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    with running_demo(tmp_path) as running:
        wait_until(running.everyone_in_sync, 60, lambda: f"the demo in sync:\n{running.tail()}")
        yield running


@pytest.fixture
def browser(demo: Demo) -> Iterator[WebDriver]:
    options = Options()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,2000",
                 "--proxy-server=direct://", "--proxy-bypass-list=*"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    login = demo.secret("CALSYNC_FLOWER_BASIC_AUTH").encode()
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {
        "headers": {"Authorization": "Basic " + base64.b64encode(login).decode()}})  # fmt: skip
    try:
        yield driver
    finally:
        driver.quit()


def test_a_person_watches_changes_arrive_resolves_a_conflict_and_retries_a_dead_letter(
    demo: Demo, browser: WebDriver, tmp_path: Path
) -> None:
    browser.get(f"{demo.api}/status")
    browser.find_element(By.CSS_SELECTOR, "a[href^='/status/tenants/']").click()
    shoot(browser, tmp_path, "status-page")

    press(browser, "Alice", "Add a busy event in Google Calendar")
    notice_says(browser, "Done in the demo world")
    # The panel refreshes itself: the Wix block appears without a reload.
    seen(browser, "//article[@data-staff='Alice']//div[@data-side='wix']"
                  "//li[@data-title='Busy (google)']")  # fmt: skip
    shoot(browser, tmp_path, "demo-change-arrived")

    press(browser, "Bob", "Edit a session on both sides")
    keep = ("//section[@id='conflicts']"
            "//button[starts-with(normalize-space(), \"Keep the calendar's\")]")
    wait_until(lambda: reloaded_finds(browser, keep), 60, "the conflict on the page")
    shoot(browser, tmp_path, "conflict", "conflicts")
    submit(browser, keep)
    notice_says(browser, "writing the kept value", "agreed one already")
    wait_until(lambda: "(call first)" in " ".join(demo.titles("Bob", "wix")), 60,
               "the calendar's title kept on the Wix side")  # fmt: skip
    wait_until(lambda: not reloaded_finds(browser, keep), 30, "the conflict closed")

    letter_id = park_a_change(demo)
    browser.refresh()
    retry = f"//section[@id='dead-letters']//form[contains(@action, '{letter_id}')]//button"
    shoot(browser, tmp_path, "dead-letter", "dead-letters")
    submit(browser, retry)
    notice_says(browser, "released")
    assert letter_status(demo, letter_id) is not DeadLetterStatus.PARKED


def press(browser: WebDriver, staff: str, label: str) -> None:
    submit(browser, f"//article[@data-staff='{staff}']//button[normalize-space()='{label}']")


def submit(browser: WebDriver, button: str) -> None:
    """Click a form's button and wait for the page it sends the browser back to."""
    page = browser.find_element(By.TAG_NAME, "html")
    browser.find_element(By.XPATH, button).click()
    # Chromium may answer "node does not belong to the document" mid-navigation: ask again.
    WebDriverWait(browser, 20, ignored_exceptions=[WebDriverException]).until(staleness_of(page))


def notice_says(browser: WebDriver, *phrases: str) -> None:
    def said(b: WebDriver) -> bool:
        notices = b.find_elements(By.CLASS_NAME, "notice")
        return any(p in n.text for n in notices for p in phrases)

    WebDriverWait(browser, 20).until(said)


def seen(browser: WebDriver, xpath: str, timeout: float = 45) -> None:
    WebDriverWait(browser, timeout, poll_frequency=0.5).until(
        lambda b: b.find_elements(By.XPATH, xpath))  # fmt: skip


def reloaded_finds(browser: WebDriver, xpath: str) -> bool:
    browser.refresh()
    return bool(browser.find_elements(By.XPATH, xpath))


def shoot(browser: WebDriver, folder: Path, name: str, section: str | None = None) -> None:
    if section:
        browser.execute_script("document.getElementById(arguments[0]).scrollIntoView()", section)
    for target in (folder, Path(SHOTS) if SHOTS else None):
        if target is not None:
            target.mkdir(parents=True, exist_ok=True)
            assert browser.save_screenshot(str(target / f"{name}.png"))


def _engine(demo: Demo) -> Engine:
    return create_engine(f"sqlite:///{demo.folder / '.calsync/calsync.db'}")


def park_a_change(demo: Demo) -> str:
    """A change to Carol's calendar parked as the worker parks one that kept failing."""
    engine = _engine(demo)
    with engine.begin() as db:
        calendar_id, connection_id = db.execute(
            select(ExternalCalendar.id, ExternalCalendar.connection_id)
            .join(Connection, Connection.id == ExternalCalendar.connection_id)
            .where(ExternalCalendar.export_target)).first()  # fmt: skip
    letter = DeadLetter(connection_id=connection_id, calendar_id=calendar_id,
                        change_key="wix:unknown-session", error="refused: 403 Forbidden",
                        attempts=5, status=DeadLetterStatus.PARKED,
                        action={"kind": "create", "side": "external", "reason": "NEW_IN_WIX"},
                        parked_at=datetime.now(UTC))  # fmt: skip
    with Session(engine) as session, session.begin():
        session.add(letter)
        session.flush()
        letter_id = letter.id
    engine.dispose()
    return letter_id


def letter_status(demo: Demo, letter_id: str) -> DeadLetterStatus | None:
    engine = _engine(demo)
    with engine.connect() as db:
        status = db.scalar(select(DeadLetter.status).where(DeadLetter.id == letter_id))
    engine.dispose()
    return status
