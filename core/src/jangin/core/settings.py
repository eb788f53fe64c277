"""Site settings, read from ``JANGIN_*`` environment variables (and an optional ``.env`` file).

Defaults are safe for a plant: local paths, no uploads, no telemetry, no API keys (so the server
answers nothing but ``/healthz`` until keys are configured).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Role", "Settings", "get_settings"]


class Role(StrEnum):
    """What an API key may do. Each role includes the ones listed before it, except ``recorder``."""

    RECORDER = "recorder"
    LABELLER = "labeller"
    ENGINEER = "engineer"
    ADMIN = "admin"


class Settings(BaseSettings):
    """Jangin's settings. Every field reads from ``JANGIN_<FIELD>`` (e.g. ``JANGIN_DATASET``).

    Attributes:
        home: Jangin's working directory (caches, Label Studio document root, logs).
        dataset: The dataset directory used when a command is given none.
        api_keys: ``{key: role}``; as JSON in ``JANGIN_API_KEYS``, e.g. ``{"k1": "engineer"}``.
        site_key: Secret that keys technician pseudonyms. Keep it on the site: with it, a name maps to
            the same pseudonym in every session; without it, pseudonyms cannot be reversed.
        label_studio_url: Label Studio base URL; empty means no server (offline import only).
        label_studio_token: Label Studio API token (legacy token or personal access token).
        offline: Refuse anything that would reach the network (always true by default).
        max_body_mb: Largest HTTP request body the server accepts (413 above, enforced while the
            body streams in, chunked bodies included).
        max_video_chunk_mb: Largest body of one video upload chunk (``PATCH .../video/{camera}``).
        max_video_mb: Largest total size of one camera's video upload (413 past it).
        max_json_depth: Deepest nesting of a JSON request body (422 deeper).
        max_batch_rows: Most rows in one sensor batch (413 above).
        max_batch_mb: Most decompressed bytes in one Arrow IPC sensor batch (413 above).
        min_time: Earliest sensor or event time accepted from a recording app (422 before it).
        max_time: Latest sensor or event time accepted (422 from it on).
        cameras: ``{name: source}`` camera workers for ``jangin serve`` (RTSP URL, device, file).
    """

    model_config = SettingsConfigDict(env_prefix="JANGIN_", env_file=".env", extra="ignore", frozen=True)

    home: Path = Field(default_factory=lambda: Path.home() / ".jangin")
    dataset: Path = Path("jangin-data")
    api_keys: dict[str, Role] = Field(default_factory=dict)
    site_key: SecretStr = SecretStr("")
    label_studio_url: str = ""
    label_studio_token: SecretStr = SecretStr("")
    offline: bool = True
    max_body_mb: int = Field(default=32, ge=1)
    max_video_chunk_mb: int = Field(default=64, ge=1)
    max_video_mb: int = Field(default=16384, ge=1)
    max_json_depth: int = Field(default=64, ge=2, le=500)
    max_batch_rows: int = Field(default=2_000_000, ge=1)
    max_batch_mb: int = Field(default=256, ge=1)
    min_time: datetime = datetime(2000, 1, 1, tzinfo=UTC)
    max_time: datetime = datetime(2100, 1, 1, tzinfo=UTC)
    cameras: dict[str, str] = Field(default_factory=dict)

    @field_validator("min_time", "max_time")
    @classmethod
    def _utc(cls, v: datetime) -> datetime:
        return v.replace(tzinfo=UTC) if v.tzinfo is None else v.astimezone(UTC)

    def role_of(self, api_key: str | None) -> Role | None:
        """The role of ``api_key``, or ``None`` when the key is unknown (compared in constant time)."""
        if not api_key:
            return None
        for key, role in self.api_keys.items():
            if hmac.compare_digest(key.encode(), api_key.encode()):
                return role
        return None

    def pseudonym(self, name: str) -> str:
        """A stable pseudonym for a person's name: ``tech-`` + keyed hash (HMAC-SHA256, 12 hex digits).

        Raises:
            ValueError: ``name`` is empty.
        """
        norm = " ".join(name.split()).casefold()
        if not norm:
            raise ValueError("cannot pseudonymise an empty name")
        key = self.site_key.get_secret_value().encode() or b"jangin-default-site-key"
        return "tech-" + hmac.new(key, norm.encode(), hashlib.sha256).hexdigest()[:12]


def get_settings(**overrides: object) -> Settings:
    """Read settings from the environment, with keyword overrides on top."""
    return Settings(**overrides)  # type: ignore[arg-type]
