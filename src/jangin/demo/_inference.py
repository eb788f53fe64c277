"""The demo's serving step: start the inspection server, inspect the held-out images over HTTP,
record a few reviews (one override), render the control charts, stop the server."""

from __future__ import annotations

import json
import secrets
import socket
import statistics
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

__all__ = ["demo_serve"]

#: Verdict rules of the demo: every class is a defect; 0.25..0.5 is doubtful (human review).
DEMO_RULES = "default:\n  ng_classes: null\n  min_conf: 0.5\n  doubtful: [0.25, 0.5]\n  anomaly_doubtful: [0.45, 0.55]\n"


def _pct(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    s = sorted(xs)
    return s[min(len(s) - 1, round(q / 100 * (len(s) - 1)))]


def demo_serve(ds: Any, model_name: str, images: list[tuple[str, bytes]], out_dir: Path) -> dict[str, Any]:
    """Serve ``model_name`` from ``ds``'s registry on a free loopback port, inspect ``images`` over HTTP,
    review a few (the first one overridden), write the control charts, and stop the server.

    Args:
        ds: The demo :class:`~jangin.core.Dataset` (inspections, reviews, labels are appended to it).
        model_name: ``name[:version]`` of a detect or anomaly model in ``ds.models_dir``.
        images: ``(source, JPEG/PNG bytes)``; they alternate between stations ``line-A`` and ``line-B``.
        out_dir: Where the charts (SVG), the verdict rules and ``serve.json`` are written.

    Returns:
        ``counts`` (verdicts), ``latency_ms`` (client round trip and server side, p50 / p99),
        ``reviews``, ``precision``, ``drift`` per station, ``paths`` (charts, rules, summary) and
        ``urls`` (the review page and the chart API as they were served; ``serve_command`` shows how
        to serve them again).
    """
    import httpx
    import uvicorn

    from jangin.core.server import create_app
    from jangin.core.settings import Role, Settings, get_settings
    from jangin.inference._service import InferenceConfig
    from jangin.inference.server import make_register

    out_dir = Path(out_dir)
    (out_dir / "charts").mkdir(parents=True, exist_ok=True)
    rules = out_dir / "verdict-rules.yaml"
    rules.write_text(DEMO_RULES)
    key = secrets.token_urlsafe(18)
    settings = Settings(
        dataset=ds.root,
        api_keys={key: Role.ADMIN},
        home=out_dir / "home",
        site_key_file=get_settings().site_key_path(),  # the site's pseudonym key, as in the other steps
    )
    cfg = InferenceConfig(model=model_name, rules=rules, flush_s=0.5, ok_sample_every=5)
    app = create_app(settings, routers=[], extra=[make_register(cfg, dataset=ds)])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="jangin-demo-serve"
    )
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the demo server did not start")
        time.sleep(0.02)
    results: list[dict[str, Any]] = []
    wall: list[float] = []
    reviews: list[dict[str, Any]] = []
    try:
        with httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=60) as c:
            for i, (source, data) in enumerate(images):
                ctype = "image/png" if data[:4] == b"\x89PNG" else "image/jpeg"
                t = time.perf_counter()
                r = c.post(
                    "/v1/inspect",
                    content=data,
                    headers={"Content-Type": ctype},
                    params={"station": "line-A" if i % 2 == 0 else "line-B", "camera": "still"},
                )
                wall.append((time.perf_counter() - t) * 1e3)
                r.raise_for_status()
                results.append({**r.json(), "source": source})
            # The first review overrides a decisive (OK/NG) verdict; the others resolve or confirm.
            decisive = [x for x in results if x["verdict"] in ("OK", "NG")][:1]
            todo = decisive + [x for x in results if x["verdict"] != "OK" and x not in decisive][:4]
            for j, x in enumerate(todo):
                if j == 0:  # an override: the reviewer disagrees with the model
                    verdict, comment = ("OK" if x["verdict"] != "OK" else "NG"), "demo: override"
                else:
                    verdict, comment = ("NG" if x["verdict"] != "OK" else "OK"), "demo: confirmed"
                rv = c.post(
                    f"/v1/inspections/{x['inspection_id']}/review",
                    json={"verdict": verdict, "comment": comment, "reviewer": "demo quality engineer"},
                )
                rv.raise_for_status()
                reviews.append(rv.json())
            every = max(3, len(results) // 16)
            charts = c.get("/v1/quality/charts", params={"every": every}).json()
            precision = c.get("/v1/quality/precision").json()
    finally:
        server.should_exit = True
        thread.join(30)
    paths: dict[str, Any] = {"charts": {}, "rules": str(rules)}
    drift: dict[str, Any] = {}
    for st, ch in charts["stations"].items():
        for kind, d in ch.items():
            p = out_dir / "charts" / f"{st or 'none'}-{'p-chart' if kind == 'p' else 'xbar-chart'}.svg"
            p.write_text(d["svg"])
            paths["charts"][f"{st}/{kind}"] = str(p)
            drift[f"{st}/{kind}"] = d["violations"]
    server_ms = [x["latency_ms"] for x in results]
    summary = {
        "model": model_name,
        "images": len(results),
        "counts": dict(Counter(x["verdict"] for x in results)),
        "latency_ms": {
            "client_p50": _pct(wall, 50),
            "client_p99": _pct(wall, 99),
            "server_p50": _pct(server_ms, 50),
            "server_p99": _pct(server_ms, 99),
            "client_mean": statistics.fmean(wall) if wall else None,
        },
        "reviews": [
            {k: r[k] for k in ("inspection_id", "model_verdict", "verdict", "comment", "label_id")}
            for r in reviews
        ],
        "overrides": sum(
            r["model_verdict"] != "DOUBTFUL" and r["verdict"] != r["model_verdict"] for r in reviews
        ),
        "precision": precision,
        "drift": drift,
        "chart_subgroup": every,
        "paths": paths,
        "urls": {
            "review_page": f"{url}/review",
            "charts_api": f"{url}/v1/quality/charts",
            "served_until_demo_end": True,
        },
        "serve_command": (
            f'JANGIN_DATASET={ds.root} JANGIN_API_KEYS=\'{{"<key>": "engineer"}}\' '
            f"JANGIN_INFERENCE_MODEL={model_name} jangin serve"
            "  # then open http://127.0.0.1:8000/review and sign in with an engineer key"
        ),
    }
    (out_dir / "serve.json").write_text(json.dumps(summary, indent=2, default=str))
    paths["summary"] = str(out_dir / "serve.json")
    return summary
