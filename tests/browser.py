"""A real headless browser for tests of the pages repo-tool writes: Debian's ``chromium``.

:func:`dump_dom` loads a page and returns the DOM as the browser built it (after parsing, so an
injected element would be there), :func:`screenshot` renders it to a PNG, and
:func:`network_requests` lists every URL the page made the browser ask for, read from Chromium's
NetLog (``--log-net-log``), so a test can prove a page loads nothing.

Each call is one fresh Chromium process (its own empty ``--user-data-dir``), headless, with the
flags this machine needs (no sandbox as root; no background networking, which a closed network
refuses noisily).  Nothing it asks for leaves the machine: every host name, address literals
included, resolves to nothing (``--host-resolver-rules``) and every HTTP(S) request goes to a proxy
that does not resolve either, so a request is still made (and logged) but never sent.  A test that
needs Chromium skips, naming the Debian package, where it is not installed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import zlib
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

PACKAGE = "chromium"  # Debian's package (/usr/bin/chromium); .ci/run installs it
TIMEOUT = 60  # seconds, for every Chromium run
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=http://no-proxy.invalid:9")
IGNORED_SCHEMES = ("data:", "chrome:", "chrome-extension:", "chrome-search:", "chrome-untrusted:", "devtools:",
                   "about:", "blob:")
BROWSER_ITSELF = "not an origin"  # the initiator NetLog gives requests the browser makes for itself


def chromium() -> str:
    """The Chromium executable; the calling test is skipped where there is none."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip(f"chromium is not installed (Debian package: {PACKAGE})")


def _run(args: list[str], work: Path) -> bytes:
    """Run one Chromium in its own process group with a fresh profile under ``work``; its stdout.
    Past :data:`TIMEOUT` the whole group (browser, renderer, GPU and utility processes) is killed."""
    profile = work / "profile"
    profile.mkdir()
    command = [chromium(), *FLAGS, f"--user-data-dir={profile}", *args]
    with subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          start_new_session=True) as proc:
        try:
            out, err = proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise AssertionError(f"chromium did not finish in {TIMEOUT} s: {' '.join(command)}") from None
    if proc.returncode != 0:
        raise AssertionError(f"chromium exited {proc.returncode}: {err.decode(errors='replace')[-2000:]}")
    return out


def page_url(path: Path) -> str:
    return path.resolve().as_uri()


def dump_dom(path: Path) -> str:
    """The DOM of the page at ``path`` once loaded, serialized by Chromium (``--dump-dom``)."""
    with tempfile.TemporaryDirectory(prefix="chromium-") as work:
        return _run(["--dump-dom", page_url(path)], Path(work)).decode("utf-8")


def screenshot(path: Path, png: Path, width: int = 1400, height: int = 900) -> Path:
    """Render the page at ``path`` into ``png`` (a ``width`` x ``height`` window) and check a real
    picture was written."""
    with tempfile.TemporaryDirectory(prefix="chromium-") as work:
        png.unlink(missing_ok=True)
        _run([f"--screenshot={png}", f"--window-size={width},{height}", "--hide-scrollbars", page_url(path)],
             Path(work))
    data = png.read_bytes() if png.exists() else b""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{png}: chromium wrote no PNG"
    assert int.from_bytes(data[16:20], "big") == width and int.from_bytes(data[20:24], "big") == height, \
        f"{png}: not {width}x{height}"
    assert _byte_values(data) > 32, f"{png}: a blank picture"
    return png


def _byte_values(png: bytes) -> int:
    """How many distinct byte values the PNG's decompressed image data holds: a blank page has a
    handful (its colour and the row filters), anything with text or shapes far more."""
    offset, idat = 8, b""
    while offset < len(png):
        length = int.from_bytes(png[offset:offset + 4], "big")
        if png[offset + 4:offset + 8] == b"IDAT":
            idat += png[offset + 8:offset + 8 + length]
        offset += 12 + length
    return len(set(zlib.decompress(idat)))


def network_requests(path: Path) -> list[str]:
    """Every URL the page at ``path`` made the browser request (in order, each once), other than
    its own ``file://`` URL, ``data:`` and the browser's internal ones.  Read from the NetLog of one
    load: URL requests with an initiator (the browser's own, such as its update and time checks,
    have none) and preconnects.  ``file://`` loads never reach the network stack, so they are not
    in the NetLog: a page's own test checks it names no other file."""
    own = page_url(path)
    with tempfile.TemporaryDirectory(prefix="chromium-") as work:
        log = Path(work) / "net.json"
        _run([f"--log-net-log={log}", "--net-log-capture-mode=Everything", "--dump-dom", own], Path(work))
        events, types = _netlog(log)
    urls: list[str] = []
    for event in events:
        params = event.get("params")
        if not isinstance(params, dict) or not isinstance(params.get("url"), str) or event.get("phase") != 1:
            continue
        kind = types.get(event.get("type"))
        page_made = (kind == "URL_REQUEST_START_JOB" and params.get("initiator") != BROWSER_ITSELF) or \
            (kind == "HTTP_STREAM_JOB_CONTROLLER" and params.get("is_preconnect") is True)
        url = params["url"]
        if page_made and url != own and not url.startswith(IGNORED_SCHEMES) and url not in urls:
            urls.append(url)
    return urls


def _netlog(log: Path) -> tuple[list[dict[str, Any]], dict[object, str]]:
    """The events of a NetLog file and its event type names by number (``constants.logEventTypes``).
    A log cut short (Chromium killed) lacks its closing ``]}``: it is mended before parsing."""
    text = log.read_text(encoding="utf-8").rstrip()
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = json.loads(text.rstrip(",") + "]}")
    types = {number: name for name, number in data["constants"]["logEventTypes"].items()}
    phases = data["constants"]["logEventPhase"]
    assert phases.get("PHASE_BEGIN") == 1, f"NetLog phases changed: {phases}"
    return data["events"], types


# --- reading the status page ---------------------------------------------------------------------


class _Page(HTMLParser):
    """The page's ``<tr data-state>`` rows (their attributes and text), meta tags and element ids."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[dict[str, Any]] = []
        self.metas: list[dict[str, str | None]] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.tags.append((tag, found))
        if tag == "meta":
            self.metas.append(found)
        if tag == "tr" and ("data-state" in found or "more" in (found.get("class") or "").split()):
            if "data-state" in found:  # a row "more" (an error under it) reads as part of it
                self.rows.append({"attrs": found, "text": ""})
            self._depth = 1
        elif tag == "tr" and self._depth:
            self._depth += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr" and self._depth:
            self._depth -= 1

    def handle_data(self, data: str) -> None:
        if self._depth and self.rows:
            self.rows[-1]["text"] += data


def parse(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    page.close()
    return page
