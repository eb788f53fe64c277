"""Site settings, read from ``JANGIN_*`` environment variables (and an optional ``.env`` file).

Defaults are safe for a plant: local paths, no uploads, no telemetry, no API keys (so the server
answers nothing but ``/healthz`` until keys are configured).
"""

from __future__ import annotations

import hashlib
import hmac
from enum import StrEnum
from pathlib import Path

from pydantic import Field, SecretStr
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
        max_body_mb: Largest HTTP request body the server accepts (413 above).
        cameras: ``{name: source}`` camera workers for ``jangin serve`` (RTSP URL, device, file).
        deidentify: Blur faces in every frame and video the server stores (site policy, set by an
            admin; an API request cannot turn it off). ``JANGIN_DEIDENTIFY=false`` stores faces as recorded.
    """

    model_config = SettingsConfigDict(env_prefix="JANGIN_", env_file=".env", extra="ignore", frozen=True)

    home: Path = Field(default_factory=lambda: Path.home() / ".jangin")
    dataset: Path = Path("jangin-data")
    api_keys: dict[str, Role] = Field(default_factory=dict)
    site_key: SecretStr = SecretStr("")
    label_studio_url: str = ""
    label_studio_token: SecretStr = SecretStr("")
    offline: bool = True
    max_body_mb: int = 32
    cameras: dict[str, str] = Field(default_factory=dict)
    deidentify: bool = True

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
