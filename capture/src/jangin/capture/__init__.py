"""Capture: recorded sessions (video, multi-rate sensor files, event markers) into the dataset.

Each device keeps its own rate and clock: samples are stored in long format with the device's clock
offset applied, frames are sampled (sharp, not near-duplicate, around events) with faces blurred.
"""

from __future__ import annotations

from jangin.capture._import import (
    ImportResult,
    import_session,
    import_sessions,
    import_stills,
    session_id_for,
)
from jangin.capture._manifest import CameraSpec, ChannelSpec, DeviceSpec, SessionManifest, load_manifest

__all__ = [
    "CameraSpec",
    "ChannelSpec",
    "DeviceSpec",
    "ImportResult",
    "SessionManifest",
    "import_session",
    "import_sessions",
    "import_stills",
    "load_manifest",
    "session_id_for",
]
