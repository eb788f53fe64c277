"""Site settings, read from ``JANGIN_*`` environment variables (and an optional ``.env`` file).

Defaults are safe for a plant: local paths, no uploads, no telemetry, no API keys (so the server
answers nothing but ``/healthz`` until keys are configured), and no pseudonym key: names are
pseudonymised only with the site's own secret (``jangin init`` writes one; see :meth:`Settings.site_secret`).

API keys are held only as SHA-256 digests: ``{"<key>": "role"}`` (hashed when the settings load) and
``{"sha256:<64 hex>": "role"}`` (``jangin keys hash KEY`` prints that form) are both accepted.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from pydantic import Field, PrivateAttr, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from jangin.core._errors import ConfigError

__all__ = ["SITE_KEY_FILE", "Role", "Settings", "ensure_site_key", "get_settings", "hash_api_key"]

#: The site key's file name under ``JANGIN_HOME``.
SITE_KEY_FILE = "site.key"
_HASHED = re.compile(r"^sha256:[0-9a-f]{64}$")


class Role(StrEnum):
    """What an API key may do. Each role includes the ones listed before it, except ``recorder``."""

    RECORDER = "recorder"
    LABELLER = "labeller"
    ENGINEER = "engineer"
    ADMIN = "admin"


def hash_api_key(key: str) -> str:
    """The stored form of an API key: ``sha256:`` + the hex SHA-256 of its UTF-8 bytes.

    A key already in that form is returned unchanged (lower-cased), so hashing is idempotent.

    Raises:
        ValueError: ``key`` is empty.
    """
    if not key:
        raise ValueError("an API key cannot be empty")
    if _HASHED.match(key.lower()):
        return key.lower()
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


class Settings(BaseSettings):
    """Jangin's settings. Every field reads from ``JANGIN_<FIELD>`` (e.g. ``JANGIN_DATASET``).

    Attributes:
        home: Jangin's working directory (caches, Label Studio document root, logs, ``site.key``).
        dataset: The dataset directory used when a command is given none.
        api_keys: ``{key: role}``; as JSON in ``JANGIN_API_KEYS``, e.g. ``{"k1": "engineer"}`` or
            ``{"sha256:9f86…": "engineer"}``. Held hashed (``sha256:<hex>``) once loaded.
        site_key: Secret that keys technician pseudonyms (``JANGIN_SITE_KEY``). Keep it on the site: with
            it, a name maps to the same pseudonym in every session; without it, pseudonyms cannot be
            reversed. When empty, the key is read from ``site_key_file``.
        site_key_file: File holding the site key; default ``$JANGIN_HOME/site.key`` (``jangin init``
            creates it, mode 0600).
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
        deidentify: Blur faces in every frame and video the server stores (site policy, set by an
            admin; an API request cannot turn it off). ``JANGIN_DEIDENTIFY=false`` stores faces as recorded.
        runtime: Runtimes a served model should run on, best first, comma-separated ``runtime[:precision]``
            (e.g. ``openvino:int8,onnxruntime``); empty: the fastest runtime artifact that passed the
            parity gate (see ``jangin.core.runtimes.open_artifact``).
    """

    model_config = SettingsConfigDict(env_prefix="JANGIN_", env_file=".env", extra="ignore", frozen=True)

    home: Path = Field(default_factory=lambda: Path.home() / ".jangin")
    dataset: Path = Path("jangin-data")
    api_keys: dict[str, Role] = Field(default_factory=dict)
    site_key: SecretStr = SecretStr("")
    site_key_file: Path | None = None
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
    deidentify: bool = True
    runtime: str = ""

    _key_file_cache: tuple[Path, bytes] | None = PrivateAttr(default=None)

    @field_validator("api_keys", mode="after")
    @classmethod
    def _hash_keys(cls, keys: dict[str, Role]) -> dict[str, Role]:
        # Clear keys never stay in memory longer than loading takes: a dump of the settings (or a
        # traceback showing them) reveals digests only.
        return {hash_api_key(k): role for k, role in keys.items()}

    @field_validator("min_time", "max_time")
    @classmethod
    def _utc(cls, v: datetime) -> datetime:
        return v.replace(tzinfo=UTC) if v.tzinfo is None else v.astimezone(UTC)

    def role_of(self, api_key: str | None) -> Role | None:
        """The role of ``api_key``, or ``None`` when the key is unknown.

        The key's digest is compared with every stored digest in constant time (no early exit), so the
        answer's timing says nothing about which key, or how much of one, matched.
        """
        if not api_key:
            return None
        digest = hash_api_key(api_key).encode() if not api_key.startswith("sha256:") else b"-"
        found: Role | None = None
        for stored, role in self.api_keys.items():
            # Settings built with model_copy(update=...) skip validation: hash such keys here too.
            if hmac.compare_digest(hash_api_key(stored).encode(), digest) and found is None:
                found = role
        return found

    def site_key_path(self) -> Path:
        """Where the site key file is (``site_key_file``, else ``$JANGIN_HOME/site.key``)."""
        return Path(self.site_key_file) if self.site_key_file else Path(self.home) / SITE_KEY_FILE

    def site_secret(self) -> bytes:
        """The site key that keys pseudonyms: ``JANGIN_SITE_KEY``, else the site key file.

        Raises:
            ConfigError: Neither is set: there is no safe default (a key in the source code is public,
                so anyone with a staff list could re-identify technicians).
        """
        key = self.site_key.get_secret_value().strip()
        if key:
            return key.encode()
        path = self.site_key_path()
        if self._key_file_cache is not None and self._key_file_cache[0] == path:
            return self._key_file_cache[1]
        try:
            key = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            key = ""
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the site key: {exc}") from exc
        if not key and path.exists():
            raise ConfigError(f"{path}: the site key file is empty", hint="run `jangin init` to write one")
        if not key:
            raise ConfigError(
                "no site key: technician names cannot be pseudonymised",
                hint="run `jangin init` (writes $JANGIN_HOME/site.key) or set JANGIN_SITE_KEY "
                "(or JANGIN_SITE_KEY_FILE)",
            )
        self._key_file_cache = (path, key.encode())
        return key.encode()

    def pseudonym(self, name: str) -> str:
        """A stable pseudonym for a person's name: ``tech-`` + keyed hash (HMAC-SHA256, 12 hex digits).

        Raises:
            ValueError: ``name`` is empty.
            ConfigError: No site key is configured (see :meth:`site_secret`).
        """
        norm = " ".join(name.split()).casefold()
        if not norm:
            raise ValueError("cannot pseudonymise an empty name")
        return "tech-" + hmac.new(self.site_secret(), norm.encode(), hashlib.sha256).hexdigest()[:12]


def ensure_site_key(settings: Settings) -> Path | None:
    """Create a random site key (``secrets.token_hex(32)``) at ``settings.site_key_path()`` if none.

    Nothing is written when ``JANGIN_SITE_KEY`` is set or the file exists. The file is created with mode
    0600 (owner read/write only) and never overwritten: losing it unlinks new pseudonyms from old ones.

    Returns:
        The path written, or ``None`` when a key was already there.
    """
    if settings.site_key.get_secret_value().strip():
        return None
    path = settings.site_key_path()
    if path.exists():
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it meanwhile: keep theirs
        return None
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(secrets.token_hex(32) + "\n")
    os.chmod(path, 0o600)
    return path


def get_settings(**overrides: object) -> Settings:
    """Read settings from the environment, with keyword overrides on top."""
    return Settings(**overrides)  # type: ignore[arg-type]
