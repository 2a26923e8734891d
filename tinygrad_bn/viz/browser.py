"""A headless Chromium driven by selenium, for the viewer's browser test and its screenshot.

Optional: needs the `selenium` package (`pip install tinygrad_bn[viewer]`) and a
Chromium with its driver (Debian: `apt-get install chromium chromium-driver`).
The browser starts with a fresh profile and with everything that would reach
the network turned off, so it also runs on machines without one.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# Where Debian's packages put them, if they are not on PATH.
CHROMIUM_PATHS = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMEDRIVER_PATHS = ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")

FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
    "--disable-default-apps", "--disable-extensions", "--hide-scrollbars",
)


def _find(names: tuple[str, ...], paths: tuple[str, ...]) -> str | None:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return next((p for p in paths if Path(p).is_file()), None)


def missing() -> str | None:
    """Why a headless Chromium cannot run here (a sentence), or None when it can."""
    try:
        import selenium  # noqa: F401 - optional dependency
    except ImportError:
        return "the selenium package is not installed (pip install 'tinygrad_bn[viewer]')"
    if _find(("chromium", "chromium-browser"), CHROMIUM_PATHS) is None:
        return "no Chromium browser found (Debian: apt-get install chromium)"
    if _find(("chromedriver",), CHROMEDRIVER_PATHS) is None:
        return "no chromedriver found (Debian: apt-get install chromium-driver)"
    return None


@contextlib.contextmanager
def headless_chromium(width: int = 1400, height: int = 900) -> Iterator[Any]:
    """A selenium WebDriver on a headless Chromium with a fresh profile; quits on exit.

    Browser console messages are kept (`driver.get_log("browser")`).
    """
    reason = missing()
    if reason is not None:
        raise RuntimeError(f"headless_chromium: {reason}")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary = _find(("chromium", "chromium-browser"), CHROMIUM_PATHS)
    driver_path = _find(("chromedriver",), CHROMEDRIVER_PATHS)
    with tempfile.TemporaryDirectory(prefix="tgbn-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = binary
        for flag in (*FLAGS, f"--window-size={width},{height}", f"--user-data-dir={profile}"):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(service=Service(driver_path), options=options)
        try:
            yield driver
        finally:
            driver.quit()


def screenshot(page: str | Path, png: str | Path, steps: int = 0, zoom_ins: int = 0,
               width: int = 1400, height: int = 860) -> Path:
    """Open the viewer page `page`, zoom in, step `steps` times through backward, save a PNG."""
    from selenium.webdriver.common.by import By

    png = Path(png)
    with headless_chromium(width, height) as driver:
        driver.get(Path(page).resolve().as_uri())
        for _ in range(zoom_ins):
            driver.find_element(By.CSS_SELECTOR, '[data-act="zoom-in"]').click()
        for _ in range(steps):
            driver.find_element(By.CSS_SELECTOR, '[data-act="step"]').click()
        driver.save_screenshot(str(png))
    return png
