"""Aligned reads of a session: sensor channels on a regular grid or at the session's frame times."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from jangin.core import NotFoundError

if TYPE_CHECKING:
    import pyarrow as pa

    from jangin.core import Dataset

__all__ = ["align_session"]


def align_session(
    ds: Dataset,
    session_id: str,
    *,
    channels: Sequence[str] | None = None,
    rate_hz: float | None = None,
    at_frames: bool = False,
    at: Sequence[Any] | np.ndarray | None = None,
    camera: str | None = None,
    method: Literal["asof", "linear"] = "asof",
    tolerance_s: float | None = None,
) -> pa.Table:
    """A session's channels aligned on one time axis (clock offsets were applied at capture).

    Give one of ``rate_hz`` (regular grid), ``at_frames`` (the stored frames' times; adds
    ``frame_id``) or ``at`` (explicit UTC datetimes or epoch microseconds). Built on
    :func:`jangin.core.timeseries.read_aligned`.

    Raises:
        NotFoundError: Unknown session, or no frames for ``at_frames``.
        ValueError: Not exactly one of the time axes given.
    """
    import pyarrow as pa

    from jangin.core.timeseries import read_aligned

    if sum(x is not None and x is not False for x in (rate_hz, at, at_frames or None)) != 1:
        raise ValueError("give exactly one of rate_hz, at_frames or at")
    known = ds.read("sessions", columns=["session_id"], filters=[("session_id", "=", session_id)])
    if known.num_rows == 0:
        raise NotFoundError(f"no session {session_id!r}", hint="`jangin capture sessions ls` lists them")
    if at_frames:
        filters: list[tuple[str, str, Any]] = [("session_id", "=", session_id)]
        if camera:
            filters.append(("camera", "=", camera))
        fr = ds.read("frames", columns=["frame_id", "ts"], filters=filters).sort_by("ts")
        if fr.num_rows == 0:
            raise NotFoundError(
                f"session {session_id} has no frames{f' of camera {camera}' if camera else ''}"
            )
        times = fr.column("ts").cast(pa.int64()).to_numpy()
        out = read_aligned(
            ds, session_id, channels=channels, at=times, method=method, tolerance_s=tolerance_s
        )
        return out.add_column(0, "frame_id", fr.column("frame_id"))
    if at is not None:
        return read_aligned(ds, session_id, channels=channels, at=at, method=method, tolerance_s=tolerance_s)
    return read_aligned(
        ds, session_id, channels=channels, rate_hz=rate_hz, method=method, tolerance_s=tolerance_s
    )
