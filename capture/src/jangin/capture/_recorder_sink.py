"""Where the station recorder's sessions go: a dataset (in process) or a running ``jangin serve``.

Both sinks stage every batch durably on the recorder's disk first (the recorder acknowledges its
sources only after that), through the same :class:`~jangin.capture._staging.Staging` the ingest API
uses:

* :class:`DatasetSink` — the dataset's own staging area and the ingest API's service object
  (:class:`~jangin.capture.server.IngestService`): create, finish and ``process_staged`` exactly as for
  an uploaded session. A processing failure (the dataset away, its disk full) leaves the session
  ``failed`` with everything staged; the sink retries it every ``retry_s``.
* :class:`ServerSink` — a local spool (a staging area of its own) and a forwarder thread that posts
  the staged batches to the server's ingest API in order, with the same sequence numbers (a re-send
  is acknowledged without duplicating), then finishes the session there. While the server is away
  the spool grows (bounded by the station's ``buffer.max_bytes``) and is sent when it is back.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from jangin.capture._staging import ConflictError, Staging
from jangin.core import CaptureError, JanginError

__all__ = ["DatasetSink", "ServerSink", "dir_bytes"]

log = logging.getLogger(__name__)


def dir_bytes(path: Path) -> int:
    """Bytes of the files under ``path`` (0 if it is gone)."""
    try:
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    except OSError:
        return 0


def _ours(staging: Staging, station: str) -> list[str]:
    out = []
    for d in sorted(staging.root.iterdir()) if staging.root.is_dir() else []:
        p = d / "session.json"
        if p.is_file():
            try:
                meta = json.loads(p.read_text())
            except ValueError:
                continue
            if (meta.get("recorder") or {}).get("station") == station:
                out.append(d.name)
    return out


class DatasetSink:
    """Record into a dataset directory (see the module docstring)."""

    def __init__(self, root: Path, settings: Any, station: str, retry_s: float = 10.0) -> None:
        from jangin.capture.server import IngestService
        from jangin.core import Dataset

        self.svc = IngestService(Dataset.open_or_create(root), settings)
        self.svc.start()  # resumes processing a crash cut short
        self.staging = self.svc.staging
        self.station = station
        self.retry_s = retry_s
        self._next_retry = time.monotonic() + retry_s
        self.state = "ok"
        self.retried = 0

    def create(self, body: dict[str, Any]) -> str:
        """Stage a new session (the ``sessions`` row too, when the dataset is there)."""
        from jangin.capture._import import session_id_for
        from jangin.capture.server import SessionIn

        sin = SessionIn.model_validate(body)
        try:
            return str(self.svc.create(sin)["session_id"])
        except (JanginError, OSError) as exc:
            sid = session_id_for(sin.site, sin.session_key)
            if not (self.staging.dir(sid) / "session.json").is_file():
                raise
            if self.staging.finished(sid):
                raise ConflictError(
                    f"session {sid} (key {sin.session_key}) was already recorded",
                    hint="give another --session-key",
                ) from exc
            log.warning("session %s staged; its sessions row waits for the dataset: %s", sid, exc)
            self.state = f"dataset away: {exc}"
            return sid

    def finish(self, sid: str, ended_at: float | None) -> None:
        from datetime import UTC, datetime

        from jangin.capture.server import FinishIn

        ended = datetime.fromtimestamp(ended_at, UTC) if ended_at is not None else None
        try:
            self.svc.finish(sid, FinishIn(ended_at=ended))
        except (JanginError, OSError) as exc:
            if not self.staging.finished(sid):
                raise
            log.warning("session %s finished; the dataset is away (%s): processing is retried", sid, exc)

    def poll(self) -> None:
        """Retry the processing of this station's failed sessions every ``retry_s``."""
        if time.monotonic() < self._next_retry:
            return
        self._next_retry = time.monotonic() + self.retry_s
        failed = [s for s in _ours(self.staging, self.station) if self.staging.status(s)["state"] == "failed"]
        self.state = f"{len(failed)} session(s) failed processing: retrying" if failed else "ok"
        for sid in failed:
            log.warning("retrying the processing of %s", sid)
            self.retried += 1
            self.svc.retry(sid)

    def buffered_bytes(self) -> int:
        """Staged bytes of this station's sessions not processed yet."""
        return sum(
            dir_bytes(self.staging.dir(s))
            for s in _ours(self.staging, self.station)
            if self.staging.status(s)["state"] != "processed"
        )

    def status(self, sid: str) -> dict[str, Any]:
        return self.staging.status(sid)

    def close(self, timeout_s: float = 600.0) -> None:
        """Wait for the processing of finished sessions (at most ``timeout_s``)."""
        deadline = time.monotonic() + timeout_s
        while self.staging.pending() and time.monotonic() < deadline:
            time.sleep(0.1)
        self.svc.stop()


class ServerSink:
    """Record through a server's ingest API, spooling locally (see the module docstring)."""

    def __init__(self, url: str, api_key: str, spool: Path, station: str, retry_s: float = 2.0) -> None:
        from jangin.capture._client import IngestClient

        self.client = IngestClient(url, api_key, retries=2, timeout_s=10.0)
        self._url, self._key = url, api_key
        self.staging = Staging(spool)
        self.staging.clean_tmp()
        self.station = station
        self.retry_s = retry_s
        self.state = "ok"
        self.refused = 0
        self.outages = 0
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="jangin-forward", daemon=True)
        self._thread.start()

    def create(self, body: dict[str, Any]) -> str:
        from jangin.capture._import import session_id_for
        from jangin.capture.server import SessionIn

        sin = SessionIn.model_validate(body)  # checked here, so the server will take it
        sid = session_id_for(sin.site, sin.session_key)
        self.staging.create(sid, {**body, "session_id": sid})
        self._wake.set()
        return sid

    def finish(self, sid: str, ended_at: float | None) -> None:
        self.staging.finish(sid, {"ended_at": ended_at})
        self._wake.set()

    def poll(self) -> None:
        self._wake.set()

    def buffered_bytes(self) -> int:
        return sum(
            dir_bytes(self.staging.dir(s))
            for s in _ours(self.staging, self.station)
            if not (self.staging.dir(s) / "forwarded.json").exists()
        )

    def status(self, sid: str) -> dict[str, Any]:
        """The session's state on the server (``spooled`` while it is not there)."""
        from jangin.capture._client import IngestClient

        try:
            with IngestClient(self._url, self._key, retries=1) as c:
                return c.wait(sid, timeout_s=120)
        except CaptureError as exc:
            return {"state": "spooled", "error": str(exc)}

    def close(self, timeout_s: float = 600.0) -> None:
        """Forward what is spooled (at most ``timeout_s``), then stop."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and any(
            not (self.staging.dir(s) / "forwarded.json").exists() for s in _ours(self.staging, self.station)
        ):
            self._wake.set()
            time.sleep(0.1)
        self._stop.set()
        self._wake.set()
        self._thread.join(30)
        self.client.close()

    # -- forwarding --------------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(0.2)
            self._wake.clear()
            try:
                for sid in _ours(self.staging, self.station):
                    if not (self.staging.dir(sid) / "forwarded.json").exists():
                        self._forward(sid)
                self.state = "ok"
            except (CaptureError, OSError) as exc:
                if self.state == "ok":
                    self.outages += 1
                    log.warning("server away, spooling: %s", exc)
                self.state = f"server away: {exc}"
                self._stop.wait(self.retry_s)

    def _forward(self, sid: str) -> None:
        d = self.staging.dir(sid)
        meta = self.staging.meta(sid)
        if not (d / "remote.json").exists():
            body = {k: v for k, v in meta.items() if k != "session_id"}
            try:
                remote = self.client.create_session(**body)
            except CaptureError as exc:
                if "HTTP 4" not in exc.message:
                    raise
                self.refused += 1  # e.g. the key is taken by another session: kept here, never retried
                log.error("the server refused session %s (kept in the spool at %s): %s", sid, d, exc)
                (d / "forwarded.json").write_text(json.dumps({"refused": exc.message}))
                return
            (d / "remote.json").write_text(json.dumps({"session_id": remote}))
        sent = d / "sent"
        sent.mkdir(exist_ok=True)
        # events first: a step_start reaches live coaching before the samples of its step
        for p in sorted((d / "events").glob("*.json")):
            mark = sent / f"events.{p.stem}"
            if mark.exists():
                continue
            events = json.loads(p.read_text())
            self._send(lambda events=events, p=p: self.client.send_events(sid, int(p.stem), events))
            mark.touch()
        for device, files in self.staging.sensor_batches(sid).items():
            for p in files:
                mark = sent / f"{device}.{p.stem}"
                if mark.exists():
                    continue
                t, chans = _wide(pa.ipc.open_file(pa.memory_map(str(p))).read_all())
                self._send(
                    lambda t=t, chans=chans, p=p, device=device: self.client.send_sensors(
                        sid, device, int(p.stem), t, chans
                    )
                )
                mark.touch()
        for camera, path in self.staging.videos(sid).items():
            mark = sent / f"video.{camera}"
            if not mark.exists():
                self._send(lambda camera=camera, path=path: self.client.upload_video(sid, camera, path))
                mark.touch()
        if self.staging.finished(sid):
            finish = json.loads((d / "finish.json").read_text())
            opts = {}
            if finish.get("ended_at") is not None:
                from datetime import UTC, datetime

                opts["ended_at"] = datetime.fromtimestamp(finish["ended_at"], UTC).isoformat()
            self._send(lambda: self.client.finish(sid, **opts))
            # sent: nothing of it stays on the recorder (the spool held the technician's name too)
            (d / "forwarded.json").write_text(json.dumps({"at": time.time()}))
            shutil.rmtree(d, ignore_errors=True)

    def _send(self, fn: Any) -> None:
        """Send once; a refusal (any 4xx: invalid, or a conflict with what the server holds) is logged and
        counted, never retried forever (a re-sent batch the server has is acknowledged, not a conflict)."""
        try:
            fn()
        except CaptureError as exc:
            if "HTTP 4" in exc.message:
                self.refused += 1
                log.error("the server refused a spooled request (kept in the spool): %s", exc)
                return
            raise


def _wide(table: pa.Table) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A long staged batch as the ingest API's wide form: one time axis, NaN where a channel has no
    sample at a time (the server drops NaN; nothing is interpolated)."""
    channel = table.column("channel").combine_chunks()
    names = channel.dictionary.to_pylist()
    codes = channel.indices.to_numpy(zero_copy_only=False)
    t_us = table.column("t_us").to_numpy()
    value = table.column("value").to_numpy(zero_copy_only=False)
    times, row = np.unique(t_us, return_inverse=True)
    out = {n: np.full(len(times), np.nan) for n in names}
    for k, n in enumerate(names):
        m = codes == k
        out[n][row[m]] = value[m]
    return times / 1e6, out
