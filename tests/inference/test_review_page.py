"""The review page in real headless Chromium (Debian's chromium + Playwright; no browser download), its
sign-in (form → HttpOnly session cookie; the key in no URL and no log line), its security headers, and
the camera list without RTSP credentials."""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from onnx_models import solid

CHROMIUM = os.environ.get("JANGIN_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _until(page: Any, expression: str, timeout_s: float = 15.0) -> None:
    """Poll a JavaScript expression until it is truthy. (Playwright's ``wait_for_function`` evaluates a
    string predicate with ``eval`` inside the page, which the page's CSP rightly forbids; ``evaluate``
    goes through the DevTools protocol instead.)"""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {expression}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium through Playwright; fails (never skips) when either is missing."""
    if not Path(CHROMIUM).is_file():
        pytest.fail(
            f"no Chromium at {CHROMIUM}: run scripts/ci-browser.sh (installs Debian's chromium and playwright)"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the playwright package is missing: run scripts/ci-browser.sh")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def test_review_queue_keyboard_override(served: Any, browser: Any, tmp_path: Path) -> None:
    h = {**served.headers(), "Content-Type": "image/jpeg"}
    posted = {}
    for name, bgr in (("doubtful", (0, 0, 100)), ("ok", (0, 255, 0)), ("ng", (0, 0, 255))):
        posted[name] = httpx.post(
            f"{served.url}/v1/inspect", content=solid(bgr), headers=h, params={"station": "st-ui"}
        ).json()
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    blocked: list[str] = []
    page.route(
        "**/*",
        lambda route: (
            route.continue_()
            if route.request.url.startswith(served.url)
            else (blocked.append(route.request.url), route.abort())
        ),
    )
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    # CSP violations are console errors; the sign-in page's own 401 is the only expected one
    page.on(
        "console",
        lambda m: errors.append(m.text) if m.type == "error" and "status of 401" not in m.text else None,
    )
    urls: list[str] = []
    page.on("request", lambda req: urls.append(req.url))

    page.goto(f"{served.url}/review")  # no session: the sign-in form
    page.fill("#api_key", "k-eng")
    page.click("button[type=submit]")
    page.wait_for_selector("#queue tbody tr")
    assert page.url == f"{served.url}/review"
    (cookie,) = page.context.cookies()
    assert cookie["name"] == "jangin_session" and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert "k-eng" not in cookie["value"] and len(cookie["value"]) >= 32
    assert page.evaluate("document.cookie") == ""  # HttpOnly: the page's script cannot read it
    assert page.evaluate("JSON.stringify(sessionStorage) + JSON.stringify(localStorage)") == "{}{}"
    page.fill("#f-station", "st-ui")
    page.press("#f-station", "Enter")
    page.wait_for_load_state("networkidle")
    _until(page, "document.querySelectorAll('#queue tbody tr').length === 2")
    ids = page.eval_on_selector_all("#queue tbody tr", "rs => rs.map(r => r.dataset.id)")
    assert ids == [
        posted["ng"]["inspection_id"],
        posted["doubtful"]["inspection_id"],
    ]  # newest first, OK filtered out
    _until(page, "document.getElementById('img').naturalWidth > 0")

    page.keyboard.press("c")
    page.keyboard.type("burr, not a crack")
    page.keyboard.press("Escape")
    page.keyboard.press("o")  # override NG -> OK
    _until(page, "document.querySelector('#queue tbody tr td:last-child').textContent === 'OK'")
    assert "override of NG" in page.text_content("#msg")
    page.keyboard.press("n")  # the cursor moved to the DOUBTFUL one: confirm it NG
    _until(page, "document.querySelectorAll('#queue tbody tr')[1].lastChild.textContent === 'NG'")
    page.keyboard.press("k")
    page.wait_for_selector("#charts svg")
    _until(page, "document.getElementById('img').naturalWidth > 0")
    shot = tmp_path / "review-page.png"
    page.screenshot(path=str(shot), full_page=True)
    if os.environ.get("JANGIN_TEST_ARTIFACTS"):
        shutil.copy(shot, Path(os.environ["JANGIN_TEST_ARTIFACTS"]) / shot.name)
    assert not errors and not blocked
    assert urls and not [u for u in urls if "k-eng" in u or "api_key" in u]

    got = httpx.get(
        f"{served.url}/v1/inspections",
        params={"station": "st-ui", "reviewed": True},
        headers=served.headers(),
    ).json()
    reviews = {r["inspection_id"]: (r["review_verdict"], r["review_comment"]) for r in got["inspections"]}
    assert reviews == {
        posted["ng"]["inspection_id"]: ("OK", "burr, not a crack"),
        posted["doubtful"]["inspection_id"]: ("NG", None),
    }
    labels = (
        served.ds.query(
            "SELECT name FROM labels WHERE source = 'review' AND geometry_json LIKE "
            f"'%{posted['ng']['inspection_id']}%'"
        )
        .column("name")
        .to_pylist()
    )
    assert labels == ["OK"]
    page.close()


def test_review_page_roles_and_sign_in(served: Any, browser: Any) -> None:
    page = browser.new_page()
    resp = page.goto(f"{served.url}/review?api_key=k-admin")  # a key in the URL is not accepted
    assert resp is not None and resp.status == 401
    page.fill("#api_key", "not-a-key")
    page.click("button[type=submit]")
    page.wait_for_selector("text=Unknown key")
    assert page.context.cookies() == []
    page.fill("#api_key", "k-rec")
    with page.expect_navigation() as nav:
        page.click("button[type=submit]")
    assert nav.value is not None and nav.value.status == 403  # signed in, but a recorder may not review
    page.context.clear_cookies()
    page.goto(f"{served.url}/review")
    page.fill("#api_key", "k-admin")
    page.click("button[type=submit]")
    page.wait_for_selector("#count")
    page.click("#logout")  # signs out on the server: the old cookie no longer works
    page.wait_for_selector("#api_key")
    page.close()


def test_review_page_headers(served: Any) -> None:
    with httpx.Client(base_url=served.url) as c:
        login = c.get("/review")
        assert login.status_code == 401
        signed = c.post("/login", data={"api_key": "k-eng", "next": "/review"})
        assert signed.status_code == 303 and signed.headers["location"] == "/review"
        set_cookie = signed.headers["set-cookie"].lower()
        assert "httponly" in set_cookie and "samesite=strict" in set_cookie and "secure" not in set_cookie
        page = c.get("/review")
    assert page.status_code == 200 and "<script>" not in page.text and " style=" not in page.text
    for resp in (login, page):
        h = resp.headers
        assert h["content-security-policy"].startswith("default-src 'self'; script-src 'self';")
        assert "frame-ancestors 'none'" in h["content-security-policy"]
        assert "unsafe-inline" not in h["content-security-policy"]
        assert h["x-frame-options"] == "DENY"
        assert h["cache-control"] == "no-store"
        assert h["x-content-type-options"] == "nosniff"
        assert h["referrer-policy"] == "no-referrer"


def test_review_writes_by_cookie_need_a_header(served: Any) -> None:
    r = httpx.post(
        f"{served.url}/v1/inspect",
        content=solid((0, 255, 0)),
        headers={**served.headers(), "Content-Type": "image/jpeg"},
    )
    iid = r.json()["inspection_id"]
    with httpx.Client(base_url=served.url) as c:
        c.post("/login", data={"api_key": "k-eng"})
        url = f"/v1/inspections/{iid}/review"
        assert c.post(url, json={"verdict": "OK"}).status_code == 403  # a cross-site form could send this
        ok = c.post(url, json={"verdict": "OK"}, headers={"X-Requested-With": "test"})
        assert ok.status_code == 200
        assert c.post("/logout").status_code == 204
        assert c.get("/v1/inspections").status_code == 401


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def test_key_in_no_log_line(live: Any, tmp_path: Path) -> None:
    """uvicorn's access log and every other line: keys sent every way are written as ***."""
    from jangin.core import Dataset

    ds = Dataset.create(tmp_path / "ds")
    cap = _Lines()
    # On uvicorn's access logger itself too: an earlier server's dictConfig may stop its propagation.
    loggers = (logging.getLogger(), logging.getLogger("uvicorn.access"))
    for lg in loggers:
        lg.addHandler(cap)
    srv = live.start(ds.root, access_log=True, cameras={"gate": "rtsp://cam-user:cam-pass@127.0.0.1:9/s"})
    try:
        with httpx.Client(base_url=srv.url) as c:
            c.get("/review", params={"api_key": "k-eng"})
            c.get("/v1/inspections", params={"api_key": "k-admin", "limit": 1})
            c.get("/v1/inspections", headers={"X-API-Key": "k-eng"})
            c.get("/v1/inspections", headers={"Authorization": "Bearer k-admin"})
            c.post("/login", data={"api_key": "k-eng"})
            c.get("/v1/cameras")
            logging.getLogger("jangin.test").warning("client sent X-API-Key: k-eng and Bearer k-admin")
            deadline = time.monotonic() + 10
            while not any("camera" in ln.lower() for ln in cap.lines) and time.monotonic() < deadline:
                time.sleep(0.1)
    finally:
        srv.stop()
        for lg in loggers:
            lg.removeHandler(cap)
    access = [ln for ln in cap.lines if "/v1/inspections" in ln]
    assert len(access) >= 3, cap.lines  # the access log was on: the check below can fail
    assert any("api_key=***" in ln for ln in cap.lines)
    leaked = [ln for ln in cap.lines if any(s in ln for s in ("k-eng", "k-admin", "cam-pass", "cam-user"))]
    assert not leaked


def test_cameras_without_credentials(live: Any, tmp_path: Path) -> None:
    from jangin.core import Dataset

    ds = Dataset.create(tmp_path / "ds")
    srv = live.start(ds.root, cameras={"gate": "rtsp://cam-user:s3cret@127.0.0.1:9/stream"})
    try:
        deadline = time.monotonic() + 20
        while True:  # wait until the worker has failed to connect once (its error names the source)
            r = httpx.get(f"{srv.url}/v1/cameras", headers=srv.headers())
            cam = r.json()["cameras"][0]
            if cam["last_error"] or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    finally:
        srv.stop()
    assert cam["source"] == "rtsp://***@127.0.0.1:9/stream"
    assert cam["last_error"] and "127.0.0.1:9" in cam["last_error"]
    assert "s3cret" not in r.text and "cam-user" not in r.text
