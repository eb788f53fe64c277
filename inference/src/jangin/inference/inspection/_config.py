"""Settings of the inspection server (``JANGIN_INFERENCE_*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from jangin.inference._images import MAX_PIXELS

__all__ = ["InferenceConfig"]


class InferenceConfig(BaseSettings):
    """Settings of the inspection server, from ``JANGIN_INFERENCE_*`` environment variables.

    Attributes:
        model: ``name[:version]`` served at start on ``/v1/inspect``; default the registry's first image
            model (detect, classify, anomaly) with an ACTIVE version, else none until
            ``POST /v1/models/{name}/activate``.
        process_model: ``name[:version]`` of the default ``/v1/process/score`` model; default the
            registry's first process model with an ACTIVE version.
        rules: Verdict rules file (YAML/JSON, see ``jangin.inference._rules``); default built-in rules.
        providers: ONNX Runtime providers, in order; default the best available.
        max_batch: Largest micro-batch (1 disables micro-batching).
        max_wait_ms: Wait this long for a batch to fill (0: run what is waiting at once).
        max_queue: Most inspections waiting; more get 503 + Retry-After.
        max_inflight: Most inspection requests admitted at once (decoding, queued, running, being made
            durable); more get 503 + Retry-After at the door, before their body is read. Default
            ``max_queue``: every request the door admits fits the queue, so none is read and decoded
            only to be refused by a full queue (with ``max_queue + 2 * max_batch``, 128 clients had
            admitted requests decoded and then answered 503 through the exception handler).
        max_per_client: Most inspection requests of one client (API key) admitted at once (0: no limit).
        refusal_delay_s: How long the door holds a 503 before sending it. Clients that retry at once
            then retry at most this often per connection, so refusals cannot eat the cores that serve
            (a waiting refusal costs no CPU); clients that honour ``Retry-After`` wait 1 s anyway.
        durable: Make each verdict durable (write-ahead log, fsync'd per group) before answering it.
        flush_s: Longest time an inspection row waits before it is committed.
        keep_days, keep_max, ok_sample_every: Image retention (see :class:`Retention`).
        max_pixels: Largest image accepted (pixels), checked before decoding.
        camera_interval_s: Least time between two inspections of one camera.
    """

    model_config = SettingsConfigDict(env_prefix="JANGIN_INFERENCE_", extra="ignore", frozen=True)

    model: str | None = None
    process_model: str | None = None
    rules: Path | None = None
    providers: list[str] | None = None
    max_batch: int = Field(default=8, ge=1, le=256)
    max_wait_ms: float = Field(default=0.0, ge=0, le=1000)
    max_queue: int = Field(default=64, ge=1)
    max_inflight: int | None = Field(default=None, ge=1)
    max_per_client: int = Field(default=0, ge=0)
    refusal_delay_s: float = Field(default=0.2, ge=0, le=5)
    durable: bool = True
    flush_s: float = Field(default=1.0, gt=0, le=60)
    keep_days: int = Field(default=30, ge=0)
    keep_max: int = Field(default=100_000, ge=0)
    ok_sample_every: int = Field(default=20, ge=0)
    max_pixels: int = Field(default=MAX_PIXELS, gt=0)
    camera_interval_s: float = Field(default=0.5, ge=0)

    @property
    def inflight_limit(self) -> int:
        """``max_inflight``, or its default."""
        return self.max_inflight or self.max_queue
