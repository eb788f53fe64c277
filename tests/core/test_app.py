"""The core HTTP app: auth per role, error mapping, size limit, health and metrics, router discovery."""

from __future__ import annotations

import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.testclient import TestClient

from jangin.core import ConfigError, NotFoundError, SchemaError
from jangin.core.server import create_app, require
from jangin.core.settings import Role, Settings

KEYS = {"k-rec": Role.RECORDER, "k-lab": Role.LABELLER, "k-eng": Role.ENGINEER, "k-adm": Role.ADMIN}


def _extra(app: FastAPI, settings: Settings) -> None:
    r = APIRouter()

    @r.get("/eng", dependencies=[Depends(require(Role.ENGINEER))])
    def eng() -> dict[str, str]:
        return {"ok": "eng"}

    @r.get("/boom/{kind}", dependencies=[Depends(require(Role.RECORDER))])
    def boom(kind: str) -> None:
        raise {
            "missing": NotFoundError("no session s9"),
            "schema": SchemaError("column 'ts' bad", hint="use UTC"),
            "value": ValueError("bad argument"),
        }[kind]

    @r.post("/upload", dependencies=[Depends(require(Role.RECORDER))])
    def upload() -> dict[str, str]:
        return {"ok": "up"}

    app.include_router(r)
    app.state.startup.append(lambda: app.state.__setattr__("started", True))


@pytest.fixture
def client() -> TestClient:
    app = create_app(Settings(api_keys=KEYS, max_body_mb=1), routers=[], extra=[_extra])
    with TestClient(app) as c:
        yield c  # type: ignore[misc]


@pytest.mark.parametrize(
    ("key", "status"),
    [(None, 401), ("nope", 401), ("k-rec", 403), ("k-lab", 403), ("k-eng", 200), ("k-adm", 200)],
)
def test_roles(client: TestClient, key: str | None, status: int) -> None:
    headers = {"X-API-Key": key} if key else {}
    assert client.get("/eng", headers=headers).status_code == status
    if key:
        assert client.get("/eng", headers={"Authorization": f"Bearer {key}"}).status_code == status


def test_health_is_open_metrics_are_not(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    assert client.get("/metrics").status_code == 401
    r = client.get("/metrics", headers={"X-API-Key": "k-rec"})
    assert r.status_code == 200 and "python_info" in r.text
    assert client.app.state.started is True  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("kind", "status", "text"),
    [("missing", 404, "no session s9"), ("schema", 422, "use UTC"), ("value", 422, "bad argument")],
)
def test_errors_map_to_statuses(client: TestClient, kind: str, status: int, text: str) -> None:
    r = client.get(f"/boom/{kind}", headers={"X-API-Key": "k-rec"})
    assert r.status_code == status and text in r.text


def test_body_limit(client: TestClient) -> None:
    h = {"X-API-Key": "k-rec"}
    assert client.post("/upload", content=b"x" * 1000, headers=h).status_code == 200
    assert client.post("/upload", content=b"x" * (1024 * 1024 + 1), headers=h).status_code == 413


def test_unknown_router_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not installed: nope"):
        create_app(Settings(), routers=["nope"])
