"""The review page in real headless Chromium (Debian's chromium + Playwright; no browser download)."""

from __future__ import annotations

import os
import shutil
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

    page.goto(f"{served.url}/review")  # no key: the sign-in form
    page.fill("#api_key", "k-eng")
    page.click("button[type=submit]")
    page.wait_for_selector("#queue tbody tr")
    assert "api_key" not in page.url  # the key went to sessionStorage, not the address bar
    page.fill("#f-station", "st-ui")
    page.press("#f-station", "Enter")
    page.wait_for_load_state("networkidle")
    page.wait_for_function("document.querySelectorAll('#queue tbody tr').length === 2")
    ids = page.eval_on_selector_all("#queue tbody tr", "rs => rs.map(r => r.dataset.id)")
    assert ids == [
        posted["ng"]["inspection_id"],
        posted["doubtful"]["inspection_id"],
    ]  # newest first, OK filtered out
    page.wait_for_function("document.getElementById('img').naturalWidth > 0")

    page.keyboard.press("c")
    page.keyboard.type("burr, not a crack")
    page.keyboard.press("Escape")
    page.keyboard.press("o")  # override NG -> OK
    page.wait_for_function("document.querySelector('#queue tbody tr td:last-child').textContent === 'OK'")
    assert "override of NG" in page.text_content("#msg")
    page.keyboard.press("n")  # the cursor moved to the DOUBTFUL one: confirm it NG
    page.wait_for_function("document.querySelectorAll('#queue tbody tr')[1].lastChild.textContent === 'NG'")
    page.keyboard.press("k")
    page.wait_for_selector("#charts svg")
    page.wait_for_function("document.getElementById('img').naturalWidth > 0")
    shot = tmp_path / "review-page.png"
    page.screenshot(path=str(shot), full_page=True)
    if os.environ.get("JANGIN_TEST_ARTIFACTS"):
        shutil.copy(shot, Path(os.environ["JANGIN_TEST_ARTIFACTS"]) / shot.name)
    assert not errors and not blocked

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


def test_review_page_query_key_and_roles(served: Any, browser: Any) -> None:
    page = browser.new_page()
    resp = page.goto(f"{served.url}/review?api_key=k-rec")
    assert resp is not None and resp.status == 403
    resp = page.goto(f"{served.url}/review?api_key=k-admin")
    assert resp is not None and resp.status == 200
    page.wait_for_selector("#count")
    page.close()
