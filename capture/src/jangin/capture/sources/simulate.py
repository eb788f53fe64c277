"""A simulated machine: an OPC UA server (asyncua) that plays a recorded sensor file as live tags.

For demos and dry runs of a station YAML without a machine: each numeric column becomes a Double
variable ``ns=2;s=Machine.<column>``, the phase column an Int32 ``Machine.<phase column>`` (codes 1, 2, …
in order of first appearance; :attr:`SimulatedMachine.codes` names them), and ``Machine.cycle_active``
a Boolean that is true while the file plays. Values are written at the file's pace times ``speed``,
each with SourceTimestamp ``start_at + file time`` (the file's own spacing)::

    with SimulatedMachine("sample_data/etch/etch-02.csv.gz", rate_hz=10, phase_column="recipe_step",
                          speed=5) as m:
        print(m.url, m.station_channels())   # opc.tcp://127.0.0.1:PORT/jangin/ and the YAML channels
        m.play()                              # in the background; m.done is set at the end

asyncua is an optional extra (``pip install 'jangin-capture[opcua]'``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["SimulatedMachine"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SimulatedMachine:
    """An OPC UA server on loopback playing ``file`` (see the module docstring).

    Args:
        file: Wide sensor file (CSV, CSV.gz, Parquet).
        rate_hz: Its rate, when it has no ``timestamp`` column.
        phase_column: Text column published as step codes.
        channels: Columns to publish (default: every numeric column).
        speed: Playback speed.
        seconds: Play only the first ``seconds`` of the file.
        start_at: Source time of the first row (default: now).
        port: Port (default: a free one).
    """

    def __init__(
        self,
        file: str | Path,
        *,
        rate_hz: float | None = None,
        phase_column: str | None = None,
        channels: list[str] | None = None,
        speed: float = 1.0,
        seconds: float | None = None,
        start_at: float | None = None,
        port: int | None = None,
    ) -> None:
        from jangin.capture.sources.replay import ReplayConfig, _load_file

        cfg = ReplayConfig(file=Path(file), rate_hz=rate_hz, phase_column=phase_column, channels=channels)
        rel, chans, phase = _load_file(cfg)
        keep = rel <= seconds if seconds is not None else np.ones(len(rel), bool)
        self.rel = rel[keep]
        self.columns = {k: v[keep] for k, v in chans.items()}
        self.phase_column = phase_column
        self.codes: dict[str, int] = {}
        self.phase = (
            np.asarray([self.codes.setdefault(str(p), len(self.codes) + 1) for p in phase], np.int32)[keep]
            if phase is not None
            else None
        )
        self.speed = speed
        self.start_at = start_at
        self.port = port or _free_port()
        self.url = f"opc.tcp://127.0.0.1:{self.port}/jangin/"
        self.done = threading.Event()
        self.written = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="jangin-sim-machine", daemon=True)
        self._server: Any = None
        self._nodes: dict[str, Any] = {}
        self._task: Any = None

    def _call(self, coro: Any, timeout_s: float = 60.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout_s)

    def start(self) -> SimulatedMachine:
        """Serve the address space (the tags hold their first values until :meth:`play`)."""
        self._thread.start()
        self._call(self._setup())
        return self

    async def _setup(self) -> None:
        from asyncua import Server, ua

        server = Server()
        await server.init()
        server.set_endpoint(self.url)
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        idx = await server.register_namespace("urn:jangin:simulated-machine")
        machine = await server.nodes.objects.add_object(
            ua.NodeId("Machine", idx), ua.QualifiedName("Machine", idx)
        )
        for name, values in self.columns.items():
            self._nodes[name] = await machine.add_variable(
                ua.NodeId(f"Machine.{name}", idx),
                ua.QualifiedName(name, idx),
                ua.Variant(float(values[0]), ua.VariantType.Double),
            )
        if self.phase is not None and self.phase_column:
            self._nodes[self.phase_column] = await machine.add_variable(
                ua.NodeId(f"Machine.{self.phase_column}", idx),
                ua.QualifiedName(self.phase_column, idx),
                ua.Variant(int(self.phase[0]), ua.VariantType.Int32),
            )
        self._nodes["cycle_active"] = await machine.add_variable(
            ua.NodeId("Machine.cycle_active", idx),
            ua.QualifiedName("cycle_active", idx),
            ua.Variant(False, ua.VariantType.Boolean),
        )
        await server.start()
        self._server = server

    def station_channels(self) -> list[dict[str, Any]]:
        """The ``channels:`` list of an ``opcua`` source reading every tag at the fastest rate."""
        return [
            {"name": name, "node": f"ns=2;s=Machine.{name}", "sampling_interval_ms": 5}
            for name in [
                *self.columns,
                *([self.phase_column] if self.phase is not None else []),
                "cycle_active",
            ]
        ]

    def play(self) -> None:
        """Write the file's rows in the background at ``speed``; :attr:`done` is set after the last."""
        self._task = asyncio.run_coroutine_threadsafe(self._play(), self._loop)

    async def _play(self) -> None:
        from asyncua import ua

        t0 = self.start_at if self.start_at is not None else time.time()
        wall0 = time.time()

        async def write(name: str, value: Any, vt: Any, stamp: dt.datetime) -> None:
            dv = ua.DataValue(ua.Variant(value, vt), SourceTimestamp=stamp, ServerTimestamp=stamp)
            await self._server.write_attribute_value(self._nodes[name].nodeid, dv)

        try:
            for i, rel in enumerate(self.rel):
                await asyncio.sleep(max(0.0, wall0 + rel / self.speed - time.time()))
                stamp = dt.datetime.fromtimestamp(t0 + float(rel), dt.UTC)
                for name, values in self.columns.items():
                    await write(name, float(values[i]), ua.VariantType.Double, stamp)
                if self.phase is not None and self.phase_column:
                    await write(self.phase_column, int(self.phase[i]), ua.VariantType.Int32, stamp)
                await write("cycle_active", i < len(self.rel) - 1, ua.VariantType.Boolean, stamp)
                self.written += 1
        finally:
            self.done.set()

    def close(self) -> None:
        if self._server is not None:
            try:
                self._call(self._server.stop(), 10)
            except Exception:  # already stopped; closing must not hide the caller's outcome
                pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def __enter__(self) -> SimulatedMachine:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
