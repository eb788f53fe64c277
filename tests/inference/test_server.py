"""The inspection API over real HTTP (uvicorn on loopback)."""

from __future__ import annotations

import struct
import subprocess
import sys
import time
import zlib
from typing import Any

import httpx
import pytest
from onnx_models import solid

RED, GREEN, DIM_RED = (0, 0, 255), (0, 255, 0), (0, 0, 100)  # BGR


def post(
    srv: Any, body: bytes, *, ctype: str = "image/jpeg", role: str = "engineer", **params: str
) -> httpx.Response:
    return httpx.post(
        f"{srv.url}/v1/inspect",
        content=body,
        params=params,
        headers={**srv.headers(role), "Content-Type": ctype},
        timeout=30,
    )


def test_inspect_verdicts_follow_the_station_rules(served: Any) -> None:
    ng = post(served, solid(RED), station="st-01", camera="cam-a").json()
    assert ng["verdict"] == "NG" and ng["detections"][0]["name"] == "red" and ng["score"] > 0.9
    assert ng["inspection_id"].startswith("insp-") and ng["model"] == "colors" and ng["latency_ms"] > 0
    assert ng["image_kept"] and ng["image_url"] == f"/v1/inspections/{ng['inspection_id']}/image"
    ok = post(served, solid(GREEN, fmt=".png"), ctype="image/png", station="st-01").json()
    assert ok["verdict"] == "OK" and ok["score"] == 0.0
    doubtful = post(served, solid(DIM_RED), station="st-01").json()
    assert doubtful["verdict"] == "DOUBTFUL" and 0.3 <= doubtful["score"] < 0.5
    strict = post(served, solid(DIM_RED), station="st-strict").json()
    assert strict["verdict"] == "NG"
    multi = httpx.post(
        f"{served.url}/v1/inspect",
        params={"station": "st-01"},
        headers=served.headers(),
        files={"file": ("part.jpg", solid(RED), "image/jpeg")},
        timeout=30,
    ).json()
    assert multi["verdict"] == "NG"


def test_inspection_log_is_flushed_and_queryable(served: Any) -> None:
    r = post(served, solid(RED), station="st-log").json()
    deadline = time.monotonic() + 5
    while served.service.log.pending and time.monotonic() < deadline:
        time.sleep(0.05)
    assert served.service.log.pending == 0  # flushed by the background thread within flush_s
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "jangin.core.cli",
            "query",
            "-d",
            str(served.ds.root),
            "--format",
            "csv",
            f"SELECT verdict, station, image_uri FROM inspections WHERE inspection_id = '{r['inspection_id']}'",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert "\nNG,st-log,media/inspections/" in out  # CSV quotes only where needed
    got = httpx.get(
        f"{served.url}/v1/inspections", params={"station": "st-log"}, headers=served.headers()
    ).json()
    assert [x["inspection_id"] for x in got["inspections"]] == [r["inspection_id"]]
    assert (served.ds.root / got["inspections"][0]["image_uri"]).is_file()


def test_list_filters(served: Any) -> None:
    ids = [post(served, solid(c), station="st-filter").json() for c in (RED, GREEN, DIM_RED)]

    def q(**p):
        return [
            x["verdict"]
            for x in httpx.get(
                f"{served.url}/v1/inspections",
                headers=served.headers(),
                params={"station": "st-filter", **p},
            ).json()["inspections"]
        ]

    assert q() == ["DOUBTFUL", "OK", "NG"]  # newest first
    assert q(verdict="NG,DOUBTFUL") == ["DOUBTFUL", "NG"]
    assert q(min_score=0.9) == ["NG"]
    assert q(max_score=0.5, min_score=0.1) == ["DOUBTFUL"]
    assert q(since=ids[1]["ts"]) == ["DOUBTFUL", "OK"]
    assert q(until=ids[1]["ts"]) == ["NG"]
    assert q(reviewed="true") == []
    bad = httpx.get(f"{served.url}/v1/inspections", headers=served.headers(), params={"verdict": "MAYBE"})
    assert bad.status_code == 422


def test_review_appends_review_frame_and_label(served: Any) -> None:
    r = post(served, solid(DIM_RED), station="st-rev").json()
    url = f"{served.url}/v1/inspections/{r['inspection_id']}/review"
    assert httpx.post(url, json={"verdict": "NG"}, headers=served.headers("labeller")).status_code == 403
    first = httpx.post(
        url, json={"verdict": "NG", "comment": "pore", "reviewer": "Kim"}, headers=served.headers()
    )
    assert first.status_code == 200, first.text
    second = httpx.post(
        url, json={"verdict": "OK", "comment": "on second look"}, headers=served.headers()
    ).json()
    assert (
        second["model_verdict"] == "DOUBTFUL"
        and second["label_id"]
        and second["frame_id"] == first.json()["frame_id"]
    )
    ds = served.ds
    labels = ds.query(
        f"SELECT name, source, supersedes, external_id FROM current_labels WHERE frame_id = '{second['frame_id']}'"
    ).to_pylist()
    assert labels == [
        {
            "name": "OK",
            "source": "review",
            "supersedes": first.json()["label_id"],
            "external_id": second["review_id"],
        }
    ]
    frame = ds.query(
        f"SELECT source_uri, session_id FROM frames WHERE frame_id = '{second['frame_id']}'"
    ).to_pylist()
    assert frame == [{"source_uri": f"inspection:{r['inspection_id']}", "session_id": "line-inspections"}]
    rows = ds.query(
        f"SELECT reviewer, verdict FROM reviews WHERE inspection_id = '{r['inspection_id']}' ORDER BY ts"
    ).to_pylist()
    assert [x["verdict"] for x in rows] == ["NG", "OK"] and rows[0]["reviewer"].startswith("tech-")
    listed = httpx.get(
        f"{served.url}/v1/inspections",
        params={"station": "st-rev", "reviewed": True},
        headers=served.headers(),
    ).json()
    assert listed["inspections"][0]["review_verdict"] == "OK"
    prec = httpx.get(f"{served.url}/v1/quality/precision", headers=served.headers()).json()
    assert prec["reviews"] >= 1 and prec["doubtful_reviewed"] >= 1


def test_images_overlay_and_anomaly_map(served: Any) -> None:
    r = post(served, solid(RED), station="st-img").json()
    img = httpx.get(f"{served.url}{r['image_url']}", headers=served.headers())
    assert img.status_code == 200 and img.headers["content-type"] == "image/jpeg"
    ov = httpx.get(f"{served.url}{r['image_url']}", params={"overlay": True}, headers=served.headers())
    assert ov.status_code == 200 and ov.content[:3] == b"\xff\xd8\xff"
    assert (
        httpx.get(
            f"{served.url}/v1/inspections/{r['inspection_id']}/anomaly.png", headers=served.headers()
        ).status_code
        == 404
    )
    one = httpx.get(f"{served.url}/v1/inspections/{r['inspection_id']}", headers=served.headers()).json()
    assert one["verdict"] == "NG"


def test_models_list_and_roles(served: Any) -> None:
    got = httpx.get(f"{served.url}/v1/models", headers=served.headers()).json()
    assert got["serving"]["name"] == "colors"
    assert {(m["name"], m["task"]) for m in got["models"]} == {("colors", "detect"), ("bright", "anomaly")}
    assert (
        httpx.post(f"{served.url}/v1/models/bright/activate", headers=served.headers("engineer")).status_code
        == 403
    )


@pytest.mark.parametrize(
    ("role", "path", "method", "code"),
    [
        (None, "/v1/inspect", "post", 401),
        ("recorder", "/v1/inspect", "post", 403),
        ("labeller", "/v1/inspect", "post", 403),
        (None, "/v1/inspections", "get", 401),
        ("recorder", "/v1/inspections", "get", 403),
        ("engineer", "/v1/inspections", "get", 200),
        ("admin", "/v1/inspections", "get", 200),
        (None, "/v1/models", "get", 401),
        ("engineer", "/metrics", "get", 200),
        (None, "/healthz", "get", 200),
        (None, "/review", "get", 401),
        ("recorder", "/review", "get", 403),
    ],
)
def test_auth_per_role(served: Any, role: str | None, path: str, method: str, code: int) -> None:
    headers = served.headers(role) if role else {}
    kwargs: dict[str, Any] = (
        {"content": solid(GREEN), "headers": {**headers, "Content-Type": "image/jpeg"}}
        if method == "post"
        else {"headers": headers}
    )
    assert getattr(httpx, method)(f"{served.url}{path}", **kwargs).status_code == code


def _png_header_bomb(w: int, h: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    raw = zlib.compress(b"\x00" * (1 + w * 3) * 16)  # a few rows only: the header is what matters
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", raw)
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    ("body", "ctype", "code", "words"),
    [
        (b"hello, not an image", "image/jpeg", 415, "not a JPEG or PNG"),
        (b"", "image/jpeg", 422, "no image data"),
        (solid(RED)[:-300], "image/jpeg", 422, "truncated"),
        (solid(RED, fmt=".png")[:-12], "image/png", 422, "truncated"),
        (_png_header_bomb(30000, 30000), "image/png", 413, "pixels"),
        (solid(RED), "text/plain", 415, "not an image"),
        (solid(RED), "application/json", 415, "not an image"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg", 422, "JPEG"),
    ],
)
def test_bad_inputs_are_clear_4xx_and_the_server_survives(
    served: Any, body: bytes, ctype: str, code: int, words: str
) -> None:
    r = post(served, body, ctype=ctype, station="st-bad")
    assert r.status_code == code, r.text
    assert words in r.json()["detail"]
    assert post(served, solid(RED), station="st-bad").json()["verdict"] == "NG"


def test_body_limit_and_bad_ids(served: Any) -> None:
    r = httpx.post(
        f"{served.url}/v1/inspect",
        content=b"\xff" * (33 * 1024 * 1024),
        headers={**served.headers(), "Content-Type": "image/jpeg"},
        timeout=60,
    )
    assert r.status_code == 413
    for bad in ("..%2F..%2Fjangin.json", "insp-../../etc", "insp-0123456789abcdef012%2F", "x" * 300):
        got = httpx.get(f"{served.url}/v1/inspections/{bad}/image", headers=served.headers())
        assert got.status_code in (404, 422), (bad, got.status_code)
    assert (
        httpx.get(
            f"{served.url}/v1/inspections/insp-0123456789abcdef0123", headers=served.headers()
        ).status_code
        == 404
    )
    assert (
        httpx.post(
            f"{served.url}/v1/inspect",
            params={"station": "../etc"},
            content=solid(RED),
            headers={**served.headers(), "Content-Type": "image/jpeg"},
        ).status_code
        == 422
    )
    assert httpx.post(
        f"{served.url}/v1/models/..%2Fx/activate", headers=served.headers("admin")
    ).status_code in (404, 422)
    assert (
        httpx.post(f"{served.url}/v1/models/nosuch/activate", headers=served.headers("admin")).status_code
        == 404
    )


def test_metrics_and_charts(served: Any) -> None:
    for c in (RED, GREEN, RED):
        post(served, solid(c), station="st-metrics")
    text = httpx.get(f"{served.url}/metrics", headers=served.headers()).text
    assert 'jangin_inspections_total{station="st-metrics",verdict="NG"} 2.0' in text
    assert "jangin_inspect_latency_seconds_bucket" in text and "jangin_inspect_queue_depth" in text
    charts = httpx.get(
        f"{served.url}/v1/quality/charts", params={"every": 2}, headers=served.headers()
    ).json()
    st = charts["stations"]["st-metrics"]
    assert st["p"]["values"] == [0.5, 1.0] and st["p"]["svg"].startswith("<svg")
    assert len(st["xbar"]["values"]) == 2
