"""Capture: recorded sessions (video, multi-rate sensor files, event markers) into the dataset.

Each device keeps its own rate and clock: samples are stored in long format with the device's clock
offset applied, frames are sampled (sharp, not near-duplicate, around events) with faces blurred.
"""

from __future__ import annotations

from jangin.capture._align import align_session
from jangin.capture._client import IngestClient, upload_session
from jangin.capture._images_import import ImagesImportResult, import_images
from jangin.capture._import import (
    ImportResult,
    import_session,
    import_sessions,
    import_stills,
    session_id_for,
)
from jangin.capture._manifest import (
    CameraSpec,
    ChannelSpec,
    DeviceSpec,
    LongFileSpec,
    SessionManifest,
    load_manifest,
)
from jangin.capture._offsets import step_time, video_step_time
from jangin.capture._runs import RunOptions, import_runs
from jangin.capture._sensors import Policy, Problem, read_long

__all__ = [
    "CameraSpec",
    "ChannelSpec",
    "DeviceSpec",
    "ImagesImportResult",
    "ImportResult",
    "IngestClient",
    "LongFileSpec",
    "Policy",
    "Problem",
    "RunOptions",
    "SessionManifest",
    "align_session",
    "import_images",
    "import_runs",
    "import_session",
    "import_sessions",
    "import_stills",
    "load_manifest",
    "read_long",
    "session_id_for",
    "step_time",
    "upload_session",
    "video_step_time",
]
