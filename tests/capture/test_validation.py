"""Validation policies per problem (reject the file, or drop / flag rows with a count) and the
long-format reader with a column map."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from jangin.capture import import_session
from jangin.capture._sensors import Policy
from jangin.core import CaptureError, Dataset

HEAD = "timestamp,arc_current_A,arc_voltage_V"
GOOD = [f"{1.0 + i / 1000:.3f},{i},2" for i in range(20)]


def _rows_with(i: int, line: str) -> list[str]:
    rows = list(GOOD)
    rows[i] = line
    return [HEAD, *rows]


CASES = [
    # name, rows, policy, expected error (None: imported), kind reported, samples of arc_current_A
    ("duplicate rejected", _rows_with(5, "1.004,9,2"), [], "row 7: timestamp duplicated", None, None),
    ("duplicate dropped", _rows_with(5, "1.004,9,2"), ["duplicate=drop"], None, "duplicate", 19),
    ("backwards rejected", _rows_with(5, "1.000,9,2"), [], "row 7: timestamp goes backwards", None, None),
    (
        "backwards dropped",
        _rows_with(5, "1.000,9,2"),
        ["backwards=drop", "duplicate=drop"],
        None,
        "backwards",
        19,
    ),
    (
        "gap flagged",
        [HEAD, *GOOD[:10], *[f"{2.0 + i / 1000:.3f},{i},2" for i in range(10)]],
        [],
        None,
        "gap",
        20,
    ),
    (
        "gap rejected",
        [HEAD, *GOOD[:10], *[f"{2.0 + i / 1000:.3f},{i},2" for i in range(10)]],
        ["gap=reject"],
        "gap",
        None,
        None,
    ),
    ("nan dropped", _rows_with(3, "1.003,nan,2"), [], None, "nonfinite", 19),
    ("nan rejected", _rows_with(3, "1.003,inf,2"), ["nonfinite=reject"], "NaN or infinite", None, None),
    ("unknown column flagged", [HEAD + ",extra", *[r + ",1" for r in GOOD]], [], None, "unknown_columns", 20),
    (
        "unknown column rejected",
        [HEAD + ",extra", *[r + ",1" for r in GOOD]],
        ["unknown_columns=reject"],
        "undeclared column",
        None,
        None,
    ),
    ("empty file", [HEAD], [], "file is empty", None, None),
]


@pytest.mark.parametrize(("name", "rows", "policy", "error", "kind", "n"), CASES, ids=[c[0] for c in CASES])
def test_policy_per_problem(
    dataset: Dataset,
    make_session: Callable[..., Path],
    name: str,
    rows: list[str],
    policy: list[str],
    error: str | None,
    kind: str | None,
    n: int | None,
) -> None:
    d = make_session(csv_rows=rows)
    if error:
        with pytest.raises(CaptureError, match=error) as err:
            import_session(dataset, d, policy=Policy.parse(policy), keep_video=False)
        assert "power_source.csv.gz" in str(err.value)
        assert sum(dataset.counts().values()) == 0  # a rejected import writes nothing
        return
    r = import_session(dataset, d, policy=Policy.parse(policy), keep_video=False)
    problems = [p for rep in r.sensors for p in rep.problems]
    assert kind in {p.kind for p in problems}
    p = next(p for p in problems if p.kind == kind)
    assert "power_source.csv.gz" in str(p) and p.count >= 1 and p.action in ("drop", "flag")
    got = (
        dataset.query("SELECT count(*) n FROM sensor_samples WHERE channel = 'arc_current_A'")
        .column("n")[0]
        .as_py()
    )
    assert got == n


def test_unit_mismatch_vs_manifest(dataset: Dataset, make_session: Callable[..., Path]) -> None:
    d = make_session()
    m = yaml.safe_load((d / "session.yaml").read_text())
    m["devices"][0]["channels"][0]["unit"] = "V"  # arc_current_A declared in volts
    (d / "session.yaml").write_text(yaml.safe_dump(m))
    with pytest.raises(CaptureError, match="'arc_current_A' reads as unit 'A' but the manifest says 'V'"):
        import_session(dataset, d)
    assert sum(dataset.counts().values()) == 0
    r = import_session(dataset, d, policy=Policy.parse(["unit_mismatch=flag"]), keep_video=False)
    assert [p.kind for rep in r.sensors for p in rep.problems] == ["unit_mismatch"]


def test_policy_parse_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="unknown problem"):
        Policy.parse(["dupes=drop"])
    with pytest.raises(ValueError, match="reject, drop or flag"):
        Policy.parse(["gap=ignore"])


def _long_session(d: Path, rows: list[str]) -> None:
    (d / "long.csv").write_text("\n".join(rows) + "\n")
    m = yaml.safe_load((d / "session.yaml").read_text())
    m["devices"] = [
        {
            "name": "power_source",
            "clock_offset_s": 0.25,
            "channels": [{"column": "arc_current_A", "unit": "A"}],
        },
        {"name": "imu", "clock_offset_s": -1.0},
    ]
    m["long_files"] = [{"file": "long.csv", "column_map": {"sensor": "device", "t": "ts"}}]
    (d / "session.yaml").write_text(yaml.safe_dump(m))


def test_long_format_with_column_map_and_offsets(dataset: Dataset, make_session: Callable[..., Path]) -> None:
    d = make_session(seconds=2)
    t0 = 1_772_438_400.0
    rows = ["session,sensor,channel,t,value,unit"]
    for i in range(10):  # interleaved channels of two devices, each at its own rate
        rows.append(f"x,power_source,arc_current_A,{t0 + i / 100:.3f},{100 + i},A")
        if i % 2 == 0:
            rows.append(f"x,imu,torch_angle_deg,{t0 + i / 100:.3f},{15 + i},deg")
    _long_session(d, rows)
    r = import_session(dataset, d, keep_video=False)
    assert r.samples == 15
    got = dataset.query(
        "SELECT device, channel, value, unit, epoch(ts) t FROM sensor_samples ORDER BY device, ts"
    ).to_pylist()
    imu = [g for g in got if g["device"] == "imu"]
    ps = [g for g in got if g["device"] == "power_source"]
    assert len(imu) == 5 and imu[0]["t"] == pytest.approx(t0 - 1.0) and imu[0]["unit"] == "deg"
    assert len(ps) == 10 and ps[3]["t"] == pytest.approx(t0 + 0.03 + 0.25) and ps[3]["value"] == 103


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        (
            ["x,power_source,arc_current_A,1772438400.005,1,A"],
            r"row 12: timestamp goes backwards \(previous row 11\)",
        ),
        (["x,power_source,arc_current_A,1772438400.500,1,mA"], r"has unit 'mA', the manifest says 'A'"),
    ],
)
def test_long_format_problems_are_rejected(
    dataset: Dataset, make_session: Callable[..., Path], extra: list[str], error: str
) -> None:
    d = make_session(seconds=2)
    rows = ["session,sensor,channel,t,value,unit"] + [
        f"x,power_source,arc_current_A,{1_772_438_400 + i / 100:.3f},{i},A" for i in range(10)
    ]
    _long_session(d, rows + extra)
    with pytest.raises(CaptureError, match=error):
        import_session(dataset, d, keep_video=False)
    assert sum(dataset.counts().values()) == 0


def test_batch_import_reports_the_bad_file_and_imports_the_good(
    dataset: Dataset, make_session: Callable[..., Path]
) -> None:
    from jangin.capture import import_sessions

    make_session("ok-1")
    bad = make_session("bad-1")
    with gzip.open(bad / "sensors" / "power_source.csv.gz", "wt") as f:
        f.write(HEAD + "\n1.0,1,1\n1.0,1,1\n")
    results = import_sessions(dataset, bad.parent, keep_video=False)
    errors = {r.session_key: r.error for r in results}
    assert errors["ok-1"] is None and "row 3: timestamp duplicated" in (errors["bad-1"] or "")


def test_interleaved_series_are_checked_each_on_its_own() -> None:
    import numpy as np

    from jangin.capture._sensors import SensorReport, _check_series

    # series 0 at 1 ms, series 1 at 10 ms, interleaved; series 0 has a duplicate and a step back,
    # series 1 a gap; a time of one series below another's is no problem.
    t0 = [0, 1000, 2000, 2000, 3000, 1500, 4000, 5000, 6000, 7000]
    t1 = [0, 10_000, 20_000, 30_000, 40_000, 140_000]
    # the two series interleaved at random places of the file, each in its own order
    is0 = np.random.default_rng(0).permutation([True] * len(t0) + [False] * len(t1))
    us = np.empty(len(is0), np.int64)
    us[is0], us[~is0] = t0, t1
    gid = np.where(is0, 0, 1).astype(np.int16)
    rep = SensorReport(file="f.csv")
    policy = Policy.parse(["duplicate=drop", "backwards=drop"])
    keep = _check_series(us, gid, rep, policy)
    kept, kept_gid = us[keep], gid[keep]
    assert sorted(kept[kept_gid == 0].tolist()) == [0, 1000, 2000, 3000, 4000, 5000, 6000, 7000]
    assert sorted(kept[kept_gid == 1].tolist()) == t1
    kinds = {p.kind: p for p in rep.problems}
    assert set(kinds) == {"duplicate", "backwards", "gap"}
    assert kinds["gap"].count == 1 and "10 ms period" in kinds["gap"].message
    assert rep.dropped_rows == 2


@pytest.mark.parametrize(("seed", "disorder"), [(1, True), (2, True), (3, True), (4, False), (5, False)])
def test_interleaved_series_check_finds_what_a_check_per_series_finds(seed: int, disorder: bool) -> None:
    """The one-pass check over interleaved series reports the same problems (kind, first row of the
    file, count, message) and keeps the same rows as checking each series on its own."""
    import numpy as np

    from jangin.capture._sensors import SensorReport, _check_series, _check_times

    rng = np.random.default_rng(seed)
    series = []
    for k in range(7):  # periods 1..7 ms, each with its own duplicates, steps back and gaps
        t = np.cumsum(np.full(rng.integers(50, 400), 1000 * (k + 1), np.int64))
        for _ in range(rng.integers(0, 3) if disorder else 0):  # without: the block-wise path
            i = int(rng.integers(1, len(t)))
            t[i] = t[i - 1] - int(rng.integers(0, 2)) * 500  # a duplicate or a step back
        for _ in range(rng.integers(0, 3)):
            t[int(rng.integers(1, len(t))) :] += 50_000 * (k + 1)  # a gap
        series.append(t)
    gid = rng.permutation(np.concatenate([np.full(len(t), k, np.int16) for k, t in enumerate(series)]))
    us = np.empty(len(gid), np.int64)
    for k, t in enumerate(series):
        us[gid == k] = t  # each series in its own order, interleaved at random places of the file
    policy = Policy.parse(["duplicate=drop", "backwards=drop", "gap=flag"])
    rep = SensorReport(file="f.parquet")
    keep = _check_series(us, gid, rep, policy)

    ref_keep = np.ones(len(us), bool)
    per: dict[str, list] = {}
    for k in range(len(series)):
        rows = np.flatnonzero(gid == k)
        one = SensorReport(file="f.parquet")
        ref_keep[rows] = _check_times(us[rows], one, policy, rows=rows + 2)
        for p in one.problems:
            per.setdefault(p.kind, []).append(p)
    assert np.array_equal(keep, ref_keep)
    got = {p.kind: p for p in rep.problems}
    assert set(got) == set(per) and ("gap" in got or not disorder)
    for kind in ("duplicate", "backwards"):
        if kind in per:
            first = min(per[kind], key=lambda p: p.row)
            assert (got[kind].row, got[kind].message) == (first.row, first.message)
            assert got[kind].count == sum(p.count for p in per[kind])
    if "gap" in per:
        n = sum(p.count for p in per["gap"])
        assert got["gap"].count == n
        # the first gap of the lowest series that has one, as the per-series check words it
        assert got["gap"].message == per["gap"][0].message.replace(
            f"{per['gap'][0].count} gap(s)", f"{n} gap(s)", 1
        )


def test_series_longer_than_a_block_are_checked_across_blocks() -> None:
    """Steps are checked block by block: a gap and a duplicate past the first block of a series,
    and the step between two blocks, are all found."""
    import numpy as np

    from jangin.capture._sensors import _BLOCK, SensorReport, _check_series

    n = _BLOCK * 16 * 2 + 100  # more than two blocks of steps
    t = np.arange(n, dtype=np.int64) * 1000
    t[_BLOCK * 16 + 1 :] += 2_000_000  # a 2.001 s step right at the seam of blocks 1 and 2
    t[_BLOCK * 16 * 2 + 50 :] += 7_000_000  # a 7.001 s step in the third block
    us = np.concatenate([t, np.arange(10, dtype=np.int64) * 10_000])
    gid = np.concatenate([np.zeros(n, np.int16), np.ones(10, np.int16)])
    rep = SensorReport(file="f.parquet")
    assert _check_series(us, gid, rep, Policy()).all()
    (gap,) = rep.problems
    assert gap.count == 2 and gap.message.endswith("the first 2.001 s long")
    us[n - 3] = us[n - 4]  # a duplicate in the last block: found, row named
    with pytest.raises(CaptureError, match=rf"row {n - 1}: timestamp duplicated \(previous row {n - 2}\)"):
        _check_series(us, gid, SensorReport(file="f.parquet"), Policy())
