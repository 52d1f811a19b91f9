"""Headless Chromium for the UI tests: Debian's chromium and its matching chromium-driver,
installed through the project's apt path when absent, driven by Selenium.

Playwright's own browser builds come from a CDN these machines cannot reach; Debian's
packages come from the package mirror and the driver always matches the browser.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from infra.apt import install_packages

PACKAGES = {"chromium": "chromium", "chromedriver": "chromium-driver"}


def ensure_chromium() -> tuple[str, str]:
    """Paths of chromium and chromedriver, installing the Debian packages if absent."""
    missing = [package for program, package in PACKAGES.items() if not shutil.which(program)]
    install_packages(missing, why="the Prefect UI test")
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert browser and driver, "apt-get installed chromium but it is not on PATH"
    return browser, driver


@contextmanager
def headless_chromium() -> Iterator[webdriver.Chrome]:
    """A headless Chromium session (1400x1000), closed on exit."""
    browser, driver = ensure_chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1400,1000"):  # fmt: skip
        options.add_argument(flag)
    session = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    try:
        yield session
    finally:
        session.quit()
