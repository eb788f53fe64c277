"""Security of the core app and settings: OpenAPI behind a key, security schemes, hashed API keys,
browser sessions, security headers, log redaction, and the site key that keys pseudonyms."""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import APIRouter, Depends, FastAPI
from fastapi.responses import HTMLResponse

from jangin.core import ConfigError
from jangin.core._redact import RedactingFilter, redact_text, redact_url
from jangin.core.cli import main
from jangin.core.server import create_app, require
from jangin.core.settings import Role, Settings, ensure_site_key, hash_api_key

KEYS = {"k-rec": "recorder", "k-lab": "labeller", "k-eng": "engineer", "k-adm": "admin"}


def _extra(app: FastAPI, settings: Settings) -> None:
    r = APIRouter()

    @r.get("/page", response_class=HTMLResponse, dependencies=[Depends(require(Role.ENGINEER))])
    def page() -> str:
        return "<!doctype html><title>p</title>"

    @r.post("/write", dependencies=[Depends(require(Role.ENGINEER))])
    def write() -> dict[str, bool]:
        return {"ok": True}

    app.include_router(r)


class _Server:
    def __init__(self, app: FastAPI, *, access_log: bool = False) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        cfg = uvicorn.Config(app, log_level="info", access_log=access_log, log_config=None, lifespan="on")
        self.server = uvicorn.Server(cfg)
        if access_log:
            logging.getLogger("uvicorn.access").propagate = True
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server(create_app(Settings(api_keys=KEYS), routers=[], extra=[_extra]))
    yield srv
    srv.stop()


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"X-API-Key": "k-lab"}, 403),
        ({"X-API-Key": "k-rec"}, 403),
        ({"X-API-Key": "k-eng"}, 200),
        ({"Authorization": "Bearer k-adm"}, 200),
    ],
)
def test_openapi_needs_an_engineer_key(server: _Server, headers: dict[str, str], status: int) -> None:
    assert httpx.get(f"{server.url}/openapi.json", headers=headers).status_code == status


def test_html_docs_are_off_and_schemes_declared(server: _Server) -> None:
    for path in ("/docs", "/redoc", "/docs/oauth2-redirect"):
        r = httpx.get(f"{server.url}{path}", headers={"X-API-Key": "k-adm"})
        assert r.status_code == 404 and "cdn" not in r.text.lower()
    spec = httpx.get(f"{server.url}/openapi.json", headers={"X-API-Key": "k-eng"}).json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["ApiKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "API key",
    }
    assert schemes["Bearer"]["type"] == "http" and schemes["Bearer"]["scheme"] == "bearer"
    assert schemes["Session"]["in"] == "cookie"
    security = spec["paths"]["/metrics"]["get"]["security"]
    assert {"ApiKey": []} in security and {"Bearer": []} in security
    assert "security" not in spec["paths"]["/healthz"]["get"]


def test_api_key_in_the_query_is_refused(server: _Server) -> None:
    assert httpx.get(f"{server.url}/metrics", params={"api_key": "k-adm"}).status_code == 401
    assert httpx.get(f"{server.url}/page", params={"api_key": "k-eng"}).status_code == 401


def test_api_keys_are_held_hashed() -> None:
    hashed = "sha256:" + hashlib.sha256(b"k-hashed").hexdigest()
    s = Settings(api_keys={"k-clear": "engineer", hashed.upper().replace("SHA256:", "sha256:"): "admin"})
    assert all(k.startswith("sha256:") and len(k) == 71 for k in s.api_keys)
    assert "k-clear" not in repr(s.model_dump()) and "k-clear" not in s.model_dump_json()
    assert s.role_of("k-clear") is Role.ENGINEER
    assert s.role_of("k-hashed") is Role.ADMIN
    assert s.role_of(hashed) is None  # the stored digest is not itself a credential
    assert s.role_of("k-other") is None and s.role_of("") is None
    copied = s.model_copy(update={"api_keys": {**s.api_keys, "k-late": Role.RECORDER}})  # no validation
    assert copied.role_of("k-late") is Role.RECORDER


def test_keys_hash_command_and_hashed_env(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    main(["keys", "hash", "k-site"])
    printed = capsys.readouterr().out.strip()
    assert printed == "sha256:" + hashlib.sha256(b"k-site").hexdigest() == hash_api_key("k-site")
    monkeypatch.setenv("JANGIN_API_KEYS", f'{{"{printed}": "engineer"}}')
    assert Settings().role_of("k-site") is Role.ENGINEER


def test_browser_session_cookie(server: _Server) -> None:
    with httpx.Client(base_url=server.url) as c:
        bad = c.post("/login", data={"api_key": "wrong", "next": "/page"})
        assert bad.status_code == 303 and bad.headers["location"] == "/page?signin=failed"
        assert "set-cookie" not in bad.headers
        evil = c.post("/login", data={"api_key": "k-eng", "next": "//evil.example/x"})
        assert evil.headers["location"] == "/review"  # only a local path is followed
        c.cookies.clear()
        r = c.post("/login", data={"api_key": "k-eng", "next": "/page"})
        assert r.status_code == 303 and r.headers["location"] == "/page"
        cookie = r.headers["set-cookie"]
        assert "k-eng" not in cookie and hash_api_key("k-eng")[7:] not in cookie  # opaque token
        low = cookie.lower()
        assert "httponly" in low and "samesite=strict" in low and "secure" not in low  # plain http here
        assert c.get("/page").status_code == 200
        assert c.post("/write").status_code == 403  # cookie write without X-Requested-With
        assert c.post("/write", headers={"X-Requested-With": "x"}).status_code == 200
        assert c.post("/logout").status_code == 204
    with httpx.Client(
        base_url=server.url, cookies={"jangin_session": cookie.split(";")[0].split("=", 1)[1]}
    ) as c:
        assert c.get("/page").status_code == 401  # the token is forgotten on the server


def test_session_cookie_is_secure_over_https() -> None:
    from fastapi.testclient import TestClient

    app = create_app(Settings(api_keys=KEYS), routers=[], extra=[_extra])
    with TestClient(app, base_url="https://line.local") as c:
        r = c.post("/login", data={"api_key": "k-eng"}, follow_redirects=False)
    assert "secure" in r.headers["set-cookie"].lower()


def test_html_security_headers(server: _Server) -> None:
    h = httpx.get(f"{server.url}/page", headers={"X-API-Key": "k-eng"}).headers
    csp = h["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe" not in csp
    assert h["x-frame-options"] == "DENY" and h["cache-control"] == "no-store"
    assert h["x-content-type-options"] == "nosniff" and h["referrer-policy"] == "no-referrer"
    api = httpx.get(f"{server.url}/healthz").headers
    assert api["x-content-type-options"] == "nosniff" and "content-security-policy" not in api


def test_access_log_redacts_keys() -> None:
    lines: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Capture()
    loggers = (logging.getLogger(), logging.getLogger("uvicorn.access"))  # see test_review_page.py
    for lg in loggers:
        lg.addHandler(handler)
    srv = _Server(create_app(Settings(api_keys=KEYS), routers=[], extra=[_extra]), access_log=True)
    try:
        httpx.get(f"{srv.url}/page", params={"api_key": "k-eng", "x": "1"})
        httpx.get(f"{srv.url}/page", headers={"X-API-Key": "k-eng"})
        httpx.post(f"{srv.url}/login", data={"api_key": "k-adm"})
        logging.getLogger("jangin.core.test").warning("retry with Authorization: Bearer k-adm")
    finally:
        srv.stop()
        for lg in loggers:
            lg.removeHandler(handler)
    assert [ln for ln in lines if "/page?api_key=***&x=1" in ln]  # the access log line is there, redacted
    assert not [ln for ln in lines if "k-eng" in ln or "k-adm" in ln]


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("GET /review?api_key=s3cr3t HTTP/1.1", "s3cr3t"),
        ("GET /x?a=1&token=s3cr3t", "s3cr3t"),
        ("headers {'x-api-key': 's3cr3t'}", "s3cr3t"),
        ("Authorization: Bearer s3cr3t", "s3cr3t"),
        ("cookie: jangin_session=s3cr3t; other=1", "s3cr3t"),
        ("cannot open rtsp://admin:s3cr3t@10.1.2.3:554/live", "s3cr3t"),
    ],
)
def test_redact_text(text: str, secret: str) -> None:
    assert secret not in redact_text(text) and "***" in redact_text(text)
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%s", (text,), None)
    RedactingFilter().filter(record)
    assert secret not in record.getMessage()


def test_tracebacks_are_redacted_in_json_logs() -> None:
    from jangin.core.server import _JsonFormatter

    try:
        raise RuntimeError("cannot open rtsp://op:s3cr3t@cam/1 with X-API-Key: k-eng")
    except RuntimeError:
        import sys

        record = logging.LogRecord("jangin.x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    RedactingFilter().filter(record)
    line = _JsonFormatter().format(record)
    assert "RuntimeError" in line and "s3cr3t" not in line and "k-eng" not in line


def test_redact_url() -> None:
    assert redact_url("rtsp://u:p@cam:554/s") == "rtsp://***@cam:554/s"
    assert redact_url("rtsp://cam:554/s") == "rtsp://cam:554/s"
    assert redact_url("/dev/video0") == "/dev/video0"


# -- the site key (pseudonyms) ---------------------------------------------------------------------


@pytest.fixture
def no_site_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.delenv("JANGIN_SITE_KEY", raising=False)
    monkeypatch.delenv("JANGIN_SITE_KEY_FILE", raising=False)
    monkeypatch.setenv("JANGIN_HOME", str(home))
    return home


def test_no_public_default_pseudonym_key(no_site_key: Path) -> None:
    with pytest.raises(ConfigError) as err:
        Settings().pseudonym("Kim Min-jun")
    assert "jangin init" in (err.value.hint or "") and "JANGIN_SITE_KEY" in (err.value.hint or "")


def test_init_writes_a_private_site_key(no_site_key: Path, tmp_path: Path) -> None:
    main(["init", str(tmp_path / "ds")])
    key_file = no_site_key / "site.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_text().strip()
    assert len(key) == 64 and int(key, 16) >= 0
    assert not list((tmp_path / "ds").rglob("site.key"))  # outside the dataset
    first = Settings().pseudonym("Kim Min-jun")
    assert first == Settings(site_key=key).pseudonym("Kim Min-jun")
    main(["init", str(tmp_path / "ds2")])
    assert key_file.read_text().strip() == key  # an existing key is never replaced
    other = Settings(site_key_file=tmp_path / "elsewhere.key")
    assert ensure_site_key(other) == tmp_path / "elsewhere.key"
    assert other.pseudonym("Kim Min-jun") != first


def test_rotate_site_key_keeps_the_old_one(no_site_key: Path, tmp_path: Path) -> None:
    main(["init", str(tmp_path / "ds")])
    key_file = no_site_key / "site.key"
    old_key = key_file.read_text().strip()
    before = Settings().pseudonym("Kim Min-jun")
    main(["keys", "rotate-site-key"])
    (kept,) = no_site_key.glob("site.key.*.old")
    assert kept.read_text().strip() == old_key and stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and key_file.read_text().strip() != old_key
    assert Settings().pseudonym("Kim Min-jun") != before  # new sessions get new pseudonyms
    assert Settings(site_key_file=kept).pseudonym("Kim Min-jun") == before  # the old key still links


def test_site_key_file_from_the_environment(
    no_site_key: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "keys" / "plant.key"
    path.parent.mkdir()
    path.write_text("plant-secret\n")
    monkeypatch.setenv("JANGIN_SITE_KEY_FILE", str(path))
    assert Settings().pseudonym("Lee") == Settings(site_key="plant-secret").pseudonym("Lee")
    monkeypatch.setenv("JANGIN_SITE_KEY", "env-secret")  # the variable wins over the file
    assert Settings().pseudonym("Lee") == Settings(site_key="env-secret").pseudonym("Lee")


def test_init_refuses_a_key_inside_the_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JANGIN_SITE_KEY", raising=False)
    monkeypatch.setenv("JANGIN_HOME", str(tmp_path / "ds" / "home"))
    with pytest.raises(SystemExit) as done:
        main(["init", str(tmp_path / "ds")])
    assert done.value.code == 1
    assert not (tmp_path / "ds" / "home" / "site.key").exists()


def test_tests_run_with_a_site_key() -> None:
    """The session fixture in tests/conftest.py: every test (and subprocess) finds a key."""
    assert os.environ.get("JANGIN_SITE_KEY")
    assert Settings().pseudonym("x").startswith("tech-")
