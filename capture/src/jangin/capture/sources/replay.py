"""A source that plays a recorded session at real speed: for demos, tests and dry runs of a station.

It reads a wide sensor file (CSV, CSV.gz or Parquet: a time column or a fixed rate, numeric channels,
optionally a text phase / step column) or one device of a session already in a dataset, and hands out
the samples when they are due on the wall clock, stamped on its own *source* clock:

* ``start_at`` left out: the source clock starts now; at ``speed: 4`` it runs four times as fast as
  the recording (times are compressed, so the recorder's clock-offset estimate still works);
* ``start_at: 2025-06-02T07:30:00Z``: the file's own spacing from that instant (deterministic times,
  for comparing a recorded session with an uploaded one); the pace is still ``speed``;
* ``clock_offset_s: 0.5`` adds a skew: the source clock runs 0.5 s ahead of the recorder's;
* ``outages: [[20, 25]]`` simulates a lost link from 20 s to 25 s of the recording: those samples are
  never delivered and a :class:`Gap` (on the source clock) is reported when the link is back.

The phase column becomes a numeric tag (codes 1, 2, … in order of first appearance; the names are in
:attr:`ReplaySource.value_names`), so a station's ``step_tag`` can turn it into steps.

``state_file`` makes the source redeliver what the recorder has not acknowledged, as an MQTT broker
with a persistent session does: the position acknowledged last is kept there (fsync'ed), and a new
source opened on the same file starts from it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from jangin.capture.sources.base import ChannelSpec, Frame, Gap, SampleBatch, SourceHealth
from jangin.core import CaptureError, ConfigError

__all__ = ["ReplayConfig", "ReplaySource"]


class ReplayConfig(BaseModel):
    """The station-YAML mapping of a ``type: replay`` source."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str = "replay"
    file: Path | None = None
    session: str | None = None
    dataset: Path | None = None
    device: str | None = None
    time_column: str | None = None
    time_unit: str = "s"
    rate_hz: float | None = Field(default=None, gt=0)
    channels: list[str] | None = None
    units: dict[str, str] = Field(default_factory=dict)
    phase_column: str | None = None
    speed: float = Field(default=1.0, gt=0)
    start_at: datetime | None = None
    clock_offset_s: float = 0.0
    batch_max: int = Field(default=5000, ge=1)
    state_file: Path | None = None
    outages: list[tuple[float, float]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_input(self) -> ReplayConfig:
        if (self.file is None) == (self.session is None):
            raise ValueError("give exactly one of file (a sensor file) or session (with dataset)")
        if self.session is not None and self.dataset is None:
            raise ValueError("session needs dataset (the dataset directory holding it)")
        if self.start_at is not None and self.start_at.tzinfo is None:
            raise ValueError("start_at needs a timezone")
        return self


def _load_file(cfg: ReplayConfig) -> tuple[np.ndarray, dict[str, np.ndarray], Any]:
    """Relative times (s), numeric channels and the phase column (or None) of a wide file."""
    from jangin.capture._sensors import _read_table

    assert cfg.file is not None
    table = _read_table(cfg.file)
    cols = table.column_names
    tcol = cfg.time_column or ("timestamp" if "timestamp" in cols else None)
    if tcol is not None:
        if tcol not in cols:
            raise CaptureError(f"{cfg.file}: no time column {tcol!r}", hint=f"columns: {', '.join(cols)}")
        scale = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}[cfg.time_unit]
        t = np.asarray(table.column(tcol).to_numpy(zero_copy_only=False), np.float64) * scale
    elif cfg.rate_hz is not None:
        t = np.arange(table.num_rows, dtype=np.float64) / cfg.rate_hz
    else:
        raise CaptureError(
            f"{cfg.file}: no 'timestamp' column", hint="give time_column, or rate_hz for a fixed rate"
        )
    phase = table.column(cfg.phase_column).to_pylist() if cfg.phase_column else None
    if cfg.phase_column and cfg.phase_column not in cols:
        raise CaptureError(f"{cfg.file}: no phase column {cfg.phase_column!r}")
    import pyarrow as pa

    names = cfg.channels or [
        c
        for c in cols
        if c not in (tcol, cfg.phase_column)
        and (
            pa.types.is_floating(table.schema.field(c).type)
            or pa.types.is_integer(table.schema.field(c).type)
        )
    ]
    missing = [c for c in names if c not in cols]
    if missing:
        raise CaptureError(f"{cfg.file}: no column(s) {', '.join(missing)}")
    chans = {c: np.asarray(table.column(c).to_numpy(zero_copy_only=False), np.float64) for c in names}
    return t - t[0], chans, phase


def _load_session(cfg: ReplayConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str], dict[str, str]]:
    """Long samples (relative time, channel index, value) of one device of a stored session."""
    from jangin.core import Dataset

    assert cfg.dataset is not None and cfg.session is not None
    ds = Dataset.open(cfg.dataset)
    filters = [("session_id", "=", cfg.session)] + ([("device", "=", cfg.device)] if cfg.device else [])
    rows = ds.read("sensor_samples", columns=["device", "channel", "ts", "value", "unit"], filters=filters)
    if rows.num_rows == 0:
        raise CaptureError(
            f"{cfg.dataset}: session {cfg.session} has no samples{' of ' + cfg.device if cfg.device else ''}"
        )
    devices = set(rows.column("device").to_pylist())
    if len(devices) > 1:
        raise CaptureError(
            f"session {cfg.session}: samples of {len(devices)} devices",
            hint="give device: one of " + ", ".join(sorted(devices)),
        )
    ts = rows.column("ts").cast("int64").to_numpy() / 1e6
    chan = rows.column("channel").to_pylist()
    names = sorted(set(chan))
    idx = {c: i for i, c in enumerate(names)}
    units = dict(zip(chan, rows.column("unit").to_pylist(), strict=True))
    ch = np.asarray([idx[c] for c in chan], np.int32)
    order = np.argsort(ts, kind="stable")
    t = ts[order]
    return (
        t - t[0],
        ch[order],
        rows.column("value").to_numpy()[order],
        names,
        {k: v for k, v in units.items() if v},
    )


class ReplaySource:
    """Plays a recorded file or stored session (see the module docstring); a :class:`SensorSource`."""

    def __init__(self, name: str, cfg: Mapping[str, Any]) -> None:
        try:
            self.cfg = ReplayConfig.model_validate(dict(cfg))
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            raise ConfigError(f"sources.{name}{'.' + where if where else ''}: {err['msg']}") from None
        self.name = name
        self.device = self.cfg.device or name
        self.value_names: dict[str, dict[float, str]] = {}
        self._lock = threading.Lock()
        self._health = SourceHealth()
        self._rel = np.zeros(0)
        self._ch = np.zeros(0, np.int32)
        self._val = np.zeros(0)
        self._names: list[str] = []
        self._units: dict[str, str] = dict(self.cfg.units)
        self._prepare()
        if self.cfg.outages:
            out = np.zeros(len(self._rel), bool)
            for a, b in self.cfg.outages:
                out |= (self._rel >= a) & (self._rel < b)
            self._rel, self._ch, self._val = self._rel[~out], self._ch[~out], self._val[~out]
        self._gaps = sorted(self.cfg.outages, key=lambda g: g[1])
        self.channels = [
            ChannelSpec(n, self._units.get(n), ref=n, rate_hz=self.cfg.rate_hz) for n in self._names
        ]
        self._pos = 0
        self._acked = 0
        self._t0 = 0.0
        self._wall0 = 0.0
        self._pos0 = 0

    def _prepare(self) -> None:
        cfg = self.cfg
        if cfg.file is not None:
            rel, chans, phase = _load_file(cfg)
            names = list(chans)
            values = [chans[c] for c in names]
            if phase is not None and cfg.phase_column is not None:
                codes: dict[str, float] = {}
                values.append(np.asarray([codes.setdefault(str(p), float(len(codes) + 1)) for p in phase]))
                names.append(cfg.phase_column)
                self.value_names[cfg.phase_column] = {v: k for k, v in codes.items()}
            k, n = len(names), len(rel)
            self._rel = np.repeat(rel, k)  # row-major: all channels of a row together
            self._ch = np.tile(np.arange(k, dtype=np.int32), n)
            self._val = np.stack(values, axis=1).reshape(-1) if k else np.zeros(0)
            self._names = names
        else:
            self._rel, self._ch, self._val, self._names, units = _load_session(cfg)
            self._units = {**units, **self._units}

    # -- the protocol ------------------------------------------------------------------------------

    def open(self) -> None:
        state = self._read_state()
        self._acked = self._pos = self._pos0 = int(state.get("acked", 0))
        self._wall0 = time.time()
        if self.cfg.start_at is not None:
            self._t0 = self.cfg.start_at.timestamp()
        elif "t0" in state:
            self._t0 = float(state["t0"])
        else:
            self._t0 = self._wall0
        self._write_state()
        self._health.connected = True

    def _due(self, i: int) -> float:
        """Wall time at which entry ``i`` is due."""
        return self._wall0 + (self._rel[i] - self._rel[self._pos0]) / self.cfg.speed

    def _source_t(self, rel: np.ndarray) -> np.ndarray:
        if self.cfg.start_at is not None:
            return self._t0 + rel + self.cfg.clock_offset_s
        return self._t0 + rel / self.cfg.speed + self.cfg.clock_offset_s

    @property
    def exhausted(self) -> bool:
        """Everything in the file has been handed out."""
        return self._pos >= len(self._rel)

    def read(self, timeout_s: float) -> list[SampleBatch | Gap | Frame]:
        deadline = time.time() + timeout_s
        n = len(self._rel)
        while self._pos < n:
            now = time.time()
            end = int(
                np.searchsorted(
                    self._rel, self._rel[self._pos0] + (now - self._wall0) * self.cfg.speed, "right"
                )
            )
            end = min(end, self._pos + self.cfg.batch_max, n)
            if end > self._pos:
                a, self._pos = self._pos, end
                names = np.asarray(self._names, dtype=object)
                batch = SampleBatch(
                    source=self.name,
                    device=self.device,
                    channel=names[self._ch[a:end]],
                    t=self._source_t(self._rel[a:end]),
                    value=self._val[a:end].copy(),
                    received=time.time(),
                    token=end,
                )
                with self._lock:
                    self._health.samples += end - a
                    self._health.lag_s = max(0.0, now - self._due(end - 1))
                gaps: list[SampleBatch | Gap | Frame] = []
                while self._gaps and self._gaps[0][1] <= self._rel[end - 1]:
                    g0, g1 = self._gaps.pop(0)
                    if self._pos0 == 0 or g1 > self._rel[self._pos0 - 1]:  # not one acknowledged before
                        ga, gb = self._source_t(np.asarray([g0, g1]))
                        gaps.append(Gap(self.name, self.device, float(ga), float(gb), "simulated outage"))
                        self._health.reconnects += 1
                return [*gaps, batch]
            wait = min(self._due(self._pos), deadline) - now
            if wait <= 0 and now >= deadline:
                return []
            time.sleep(max(wait, 0.0005))
        time.sleep(min(timeout_s, 0.05))
        return []

    def ack(self, token: Any) -> None:
        with self._lock:
            self._acked = max(self._acked, int(token))
        self._write_state()

    def health(self) -> SourceHealth:
        with self._lock:
            h = SourceHealth(
                **{**self._health.__dict__, "extra": {"position": self._pos, "of": len(self._rel)}}
            )
        return h

    def close(self) -> None:
        self._health.connected = False

    # -- redelivery state --------------------------------------------------------------------------

    def _read_state(self) -> dict[str, Any]:
        p = self.cfg.state_file
        if p is None or not p.is_file():
            return {}
        return dict(json.loads(p.read_text()))

    def _write_state(self) -> None:
        if self.cfg.state_file is None:
            return
        from jangin.capture._staging import write_atomic

        write_atomic(self.cfg.state_file, json.dumps({"acked": self._acked, "t0": self._t0}).encode())
