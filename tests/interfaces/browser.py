"""What the browser tests share: Debian's Chromium (the importing test module is skipped
without it, and CI must have it), Playwright, where screenshots go, and a real `ser` server
process on a free port."""
from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

from ..conftest import free_port

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

if not Path(CHROMIUM).exists():
    if os.environ.get("CI"):
        raise RuntimeError("CI must install Debian's chromium for the browser test")
    pytest.skip("Debian's chromium is not installed", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")


@contextmanager
def ser_server(command: str, health: str, timeout_s: float, what: str):
    """`ser COMMAND --port P` running until the block ends; yields its base URL once
    ``health`` answers 200 (else the test fails, naming ``what``)."""
    port = free_port()
    ser = Path(sys.executable).with_name("ser")
    proc = subprocess.Popen([str(ser), command, "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"{url}{health}", timeout=2).status == 200:
                break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail(f"{what} did not start within {timeout_s:g} s")
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)
