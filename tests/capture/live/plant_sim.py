"""Real servers on loopback for the live-source tests and bench: a simulated machine over OPC UA (asyncua),
a Modbus TCP server (pymodbus) and Debian's mosquitto. Each can be stopped and started again on the same
port (the outage tests)."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import shutil
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import numpy as np


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout_s} s")


class _LoopThread:
    """An asyncio loop in a daemon thread; ``call(coro)`` runs a coroutine there and waits for it."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def call(self, coro: Coroutine[Any, Any, Any], timeout_s: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def stop(self) -> None:
        async def cancel_all() -> None:  # stop with no pending task (no "Task was destroyed" noise)
            me = asyncio.current_task()
            tasks = [t for t in asyncio.all_tasks() if t is not me]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        try:
            self.call(cancel_all(), 10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)


# -- Modbus TCP --------------------------------------------------------------------------------------


def words(fmt: str, value: float, word_order: str = "big") -> list[int]:
    """``value`` packed big-endian with struct ``fmt`` as 16-bit registers, high word first or last."""
    raw = struct.pack(fmt, value)
    ws = [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]
    return ws if word_order == "big" else ws[::-1]


class ModbusSim:
    """A pymodbus TCP server whose registers are read from the dicts ``holding``, ``input`` (address ->
    uint16) and ``coils``, ``discrete`` (address -> bool), which the test changes at will; ``ramp`` lists
    holding addresses that read ``int(time.time() * ramp_hz) % 65536`` (a changing value). ``reads``
    counts the requests served."""

    def __init__(self, port: int | None = None, size: int = 200) -> None:
        self.port = port or free_port()
        self.size = size
        self.holding: dict[int, int] = {}
        self.input: dict[int, int] = {}
        self.coils: dict[int, bool] = {}
        self.discrete: dict[int, bool] = {}
        self.ramp: list[int] = []
        self.ramp_hz = 20.0
        self.reads = 0
        self._lt: _LoopThread | None = None
        self._server: Any = None

    async def _action(
        self, fc: int, start: int, address: int, count: int, regs: list[int], set_values: Any
    ) -> None:
        self.reads += 1
        if fc in (3, 4):
            src = self.holding if fc == 3 else self.input
            tick = int(time.time() * self.ramp_hz) % 65536
            for a in range(address, address + count):
                regs[a - start] = tick if (fc == 3 and a in self.ramp) else src.get(a, 0)
        elif fc in (1, 2):
            src_b = self.coils if fc == 1 else self.discrete
            for w in range(len(regs)):
                regs[w] = sum(1 << b for b in range(16) if src_b.get((start + w) * 16 + b, False))
        return None

    def start(self) -> ModbusSim:
        from pymodbus.server import ModbusTcpServer
        from pymodbus.simulator import DataType, SimData, SimDevice

        self._lt = _LoopThread("modbus-sim")
        bits = max(1, self.size // 16)

        async def serve() -> None:
            dev = SimDevice(
                id=1,
                simdata=(
                    [SimData(0, count=bits * 16, values=False, datatype=DataType.BITS)],
                    [SimData(0, count=bits * 16, values=False, datatype=DataType.BITS)],
                    [SimData(0, count=self.size, values=0, datatype=DataType.REGISTERS)],
                    [SimData(0, count=self.size, values=0, datatype=DataType.REGISTERS)],
                ),
                action=self._action,
            )
            self._server = ModbusTcpServer(dev, address=("127.0.0.1", self.port))
            await self._server.listen()

        self._lt.call(serve())
        wait_port(self.port)
        return self

    def stop(self) -> None:
        """Stop serving and drop every connection (a powered-off PLC)."""
        if self._lt is None:
            return
        self._lt.call(self._server.shutdown())
        self._lt.stop()
        self._lt = None


# -- MQTT (Debian's mosquitto) -----------------------------------------------------------------------


def mosquitto_exe() -> str:
    exe = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )
    if exe is None:
        raise RuntimeError(
            "mosquitto is not installed: run scripts/ci-capture.sh (apt-get install -y mosquitto)"
        )
    return exe


class Mosquitto:
    """A mosquitto broker on loopback; ``stop()`` kills it (SIGKILL), ``start()`` starts it again on the
    same port. ``max_inflight_messages 0``: the broker may send any number of un-acknowledged QoS 1
    messages (a source acknowledges only after staging, so the default of 20 would throttle it)."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.conf = workdir / f"mosquitto-{self.port}.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            "max_inflight_messages 0\nmax_queued_messages 100000\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Mosquitto:
        self.proc = subprocess.Popen(
            [mosquitto_exe(), "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_port(self.port)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None


# -- OPC UA: a simulated machine ---------------------------------------------------------------------

NS_URI = "urn:jangin:test:machine"
RECIPE = ("prep", "run", "cool")  # Machine.recipe_name, one step a second


async def make_certificate(folder: Path, name: str, uri: str, *, server: bool = False) -> tuple[Path, Path]:
    """A self-signed application certificate (DER) and its key (PEM) in ``folder``."""
    from asyncua.crypto.cert_gen import setup_self_signed_certificate
    from cryptography.x509.oid import ExtendedKeyUsageOID

    folder.mkdir(parents=True, exist_ok=True)
    key, cert = folder / f"{name}-key.pem", folder / f"{name}-cert.der"
    use = [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
    await setup_self_signed_certificate(
        key, cert, uri, "127.0.0.1", use, {"commonName": f"jangin test {name}"}
    )
    return key, cert


def _utc(t: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(t, dt.UTC)


class OpcUaSim:
    """An asyncua server with a simulated machine under ``Objects/Machine`` (namespace 2):

    - ``Machine.Temp`` (``ns=2;s=Machine.Temp``): ``20 + t_rel`` written at 10 Hz (float),
    - ``Machine.Fast.<k>`` for k < ``fast``: ``k + sin(t_rel)`` at ``fast_hz`` (float),
    - ``Machine.Slow.<k>`` for k < ``slow``: ``100 * k + t_rel`` at ``slow_hz``,
    - (``counter=True``: the Fast/Slow tags read 0, 1, 2... instead, their write number),
    - ``Machine.cycle_active`` (bool): true for 1 s in every 2 s, ``Machine.recipe_step`` (int): 1, 2, 3
      cycling each second, ``Machine.recipe_name`` (text): ``RECIPE[step - 1]``,

    each write with SourceTimestamp = the write time (so a test knows every value's time: ``t_rel`` is
    seconds since :attr:`t0`). ``written[node]`` counts the values written per tag.
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        fast: int = 4,
        fast_hz: float = 100.0,
        slow: int = 4,
        slow_hz: float = 10.0,
        user: tuple[str, str] | None = None,
        counter: bool = False,
        certs: Path | None = None,
    ) -> None:
        self.port = port or free_port()
        self.url = f"opc.tcp://127.0.0.1:{self.port}/jangin/"
        self.certs = (
            certs  # a folder: the server also offers Basic256Sha256 SignAndEncrypt with a cert made there
        )
        self.counter = counter  # Fast/Slow tags read their write number instead (the bench counts losses)
        self.fast, self.fast_hz, self.slow, self.slow_hz = fast, fast_hz, slow, slow_hz
        self.user = user
        self.t0 = time.time()
        self.written: dict[str, int] = {}
        self._lt: _LoopThread | None = None
        self._server: Any = None
        self._tasks: list[Any] = []

    @staticmethod
    def temp(t_rel: float) -> float:
        return 20.0 + t_rel

    @staticmethod
    def fast_value(k: int, t_rel: float) -> float:
        return k + np.sin(t_rel)  # type: ignore[no-any-return]

    @staticmethod
    def slow_value(k: int, t_rel: float) -> float:
        return 100.0 * k + t_rel

    async def _setup(self) -> None:
        from asyncua import Server, ua

        users = None
        if self.user is not None:
            from asyncua.crypto.permission_rules import User, UserRole
            from asyncua.server.user_managers import UserManager

            expected = self.user

            class _Users(UserManager):  # type: ignore[misc]
                """Only ``user`` logs in (anonymous and wrong passwords are refused)."""

                def get_user(
                    self, iserver: Any, username: Any = None, password: Any = None, certificate: Any = None
                ) -> Any:
                    return User(role=UserRole.User) if (username, password) == expected else None

            users = _Users()
        server = Server(user_manager=users)
        await server.init()
        server.set_endpoint(self.url)
        policies = [ua.SecurityPolicyType.NoSecurity]
        if self.certs is not None:
            key, cert = await make_certificate(self.certs, "server", "urn:jangin:test:server", server=True)
            await server.load_certificate(str(cert))
            await server.load_private_key(str(key))
            policies.append(ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt)
        server.set_security_policy(policies)
        idx = await server.register_namespace(NS_URI)
        machine = await server.nodes.objects.add_object(
            ua.NodeId("Machine", idx), ua.QualifiedName("Machine", idx)
        )
        self.nodes: dict[str, Any] = {}

        async def var(sid: str, browse: str, value: Any, vtype: Any, parent: Any = machine) -> None:
            node = await parent.add_variable(
                ua.NodeId(sid, idx), ua.QualifiedName(browse, idx), ua.Variant(value, vtype)
            )
            self.nodes[sid] = node
            self.written[sid] = 0

        await var("Machine.Temp", "Temp", 20.0, ua.VariantType.Double)
        await var("Machine.cycle_active", "cycle_active", False, ua.VariantType.Boolean)
        await var("Machine.recipe_step", "recipe_step", 1, ua.VariantType.Int32)
        await var("Machine.recipe_name", "recipe_name", "prep", ua.VariantType.String)
        fast = await machine.add_folder(ua.NodeId("Machine.Fast", idx), ua.QualifiedName("Fast", idx))
        for k in range(self.fast):
            await var(f"Machine.Fast.{k}", f"F{k}", 0.0, ua.VariantType.Double, fast)
        slow = await machine.add_folder(ua.NodeId("Machine.Slow", idx), ua.QualifiedName("Slow", idx))
        for k in range(self.slow):
            await var(f"Machine.Slow.{k}", f"S{k}", 0.0, ua.VariantType.Double, slow)
        # the values given at creation carry the creation time as their stamp, and the slow set-up
        # (certificates) lies between t0 and now: write every tag once so that no value breaks the rule
        await self._write(list(self.nodes), server)
        await server.start()
        self._server = server
        self._tasks = [
            asyncio.ensure_future(
                self._writer(
                    ["Machine.Temp", "Machine.cycle_active", "Machine.recipe_step", "Machine.recipe_name"],
                    10.0,
                )
            ),
            asyncio.ensure_future(
                self._writer([f"Machine.Fast.{k}" for k in range(self.fast)], self.fast_hz)
            ),
            asyncio.ensure_future(
                self._writer([f"Machine.Slow.{k}" for k in range(self.slow)], self.slow_hz)
            ),
        ]

    def _value(self, sid: str, t_rel: float) -> tuple[Any, Any]:
        from asyncua import ua

        if sid == "Machine.Temp":
            return self.temp(t_rel), ua.VariantType.Double
        if sid == "Machine.cycle_active":
            return (int(t_rel) % 2) == 0, ua.VariantType.Boolean
        if sid == "Machine.recipe_step":
            return 1 + int(t_rel) % 3, ua.VariantType.Int32
        if sid == "Machine.recipe_name":
            return RECIPE[int(t_rel) % 3], ua.VariantType.String
        group, k = sid.split(".")[1], int(sid.split(".")[2])
        if group == "Fast":
            return float(self.fast_value(k, t_rel)), ua.VariantType.Double
        return self.slow_value(k, t_rel), ua.VariantType.Double

    async def _write(self, sids: list[str], server: Any = None) -> None:
        """Write each tag's value now, stamped now."""
        from asyncua import ua

        now = time.time()
        stamp = _utc(now)
        for sid in sids:
            v, vt = self._value(sid, now - self.t0)
            if self.counter and sid.startswith(("Machine.Fast.", "Machine.Slow.")):
                v = float(self.written[sid])
            dv = ua.DataValue(ua.Variant(v, vt), SourceTimestamp=stamp, ServerTimestamp=stamp)
            await (server or self._server).write_attribute_value(self.nodes[sid].nodeid, dv)
            self.written[sid] += 1

    async def _writer(self, sids: list[str], hz: float) -> None:
        if not sids:
            return
        period = 1.0 / hz
        n = math.ceil((time.time() - self.t0) * hz)
        while True:
            due = self.t0 + n * period
            await asyncio.sleep(max(0.0, due - time.time()))
            await self._write(sids)
            n = max(n + 1, math.ceil((time.time() - self.t0) * hz))  # never burst to catch up

    def start(self) -> OpcUaSim:
        self._lt = _LoopThread("opcua-sim")
        self._lt.call(self._setup(), 180)
        wait_port(self.port)
        return self

    def stop(self) -> None:
        """Stop the server (its clients see the connection drop); the machine (the tag writers) keeps running."""
        if self._lt is not None and self._server is not None:
            self._lt.call(self._server.stop())

    def restart(self) -> None:
        """Start serving again on the same port, with the same address space (a restarted OPC UA server)."""
        assert self._lt is not None
        self._lt.call(self._server.start())
        wait_port(self.port)

    def close(self) -> None:
        """Stop everything."""
        if self._lt is None:
            return

        async def down() -> None:
            for t in self._tasks:
                t.cancel()
            try:
                await self._server.stop()
            except Exception:  # already stopped
                pass

        self._lt.call(down())
        self._lt.stop()
        self._lt = None


def run_until(pred: Callable[[], bool], timeout_s: float, step_s: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step_s)
    return pred()
