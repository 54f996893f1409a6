"""Headless Chromium for tests that open a report page (skipped with a reason if absent)."""

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium() -> str:
    """The Chromium binary, or skip the test saying how to get it."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("headless Chromium is not installed (Debian: apt-get install chromium); .ci/run installs it")


def dump_dom(page: Path) -> str:
    """The page's DOM after its scripts ran, as Chromium serialises it."""
    with tempfile.TemporaryDirectory() as profile:
        out = subprocess.run([chromium(), *FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
                             capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def screenshot(page: Path, png: Path, size: str = "1200,1600") -> Path:
    """A PNG of the rendered page."""
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([chromium(), *FLAGS, f"--user-data-dir={profile}", f"--screenshot={png}",
                        f"--window-size={size}", page.as_uri()], capture_output=True, timeout=120, check=True)
    return png
