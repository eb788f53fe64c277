"""Tens of thousands of tasks: a 20,000-frame push against the real server (slow)."""

from __future__ import annotations

import sys
import time

import pytest
from factories import STILLS, jpeg
from test_roundtrip import FRAME_SCHEMA


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_push_20000_tasks(ls_server, ls_client, make_ds, project_name) -> None:
    from jangin.labeling import push

    n = 20_000
    ds = make_ds(n_frames=n, image=jpeg(0, 32, 20))
    calls: list[tuple[int, int | None]] = []
    t = time.perf_counter()
    r = push(
        ds,
        project_name,
        client=ls_client,
        root=ls_server.root,
        where=f"f.session_id = '{STILLS}'",
        schema=FRAME_SCHEMA,
        progress=lambda task, done, total: calls.append((done, total)),
    )
    first = time.perf_counter() - t
    assert (r.created, r.existing) == (n, 0)
    assert calls[0] == (0, n) and calls[-1] == (n, n)
    t = time.perf_counter()
    again = push(
        ds,
        project_name,
        client=ls_client,
        root=ls_server.root,
        where=f"f.session_id = '{STILLS}'",
        schema=FRAME_SCHEMA,
    )
    second = time.perf_counter() - t
    assert (again.created, again.existing) == (0, n)
    pid = ls_client.project(project_name)["id"]
    assert sum(1 for _ in ls_client.iter_tasks(pid, include="id")) == n
    print(
        f"\n20,000-task push: {first:.1f} s; second push (lists {n} tasks, adds none): {second:.1f} s",
        file=sys.stderr,
    )
