"""Reviews: a quality engineer confirms or overrides a verdict; the review becomes a label to train on."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from jangin.core import NotFoundError
from jangin.core._ids import new_id, stable_id
from jangin.core.schema import LabelRow, ReviewRow
from jangin.inference._images import decode_checked, sniff

if TYPE_CHECKING:
    from jangin.core import Dataset
    from jangin.inference.inspection._config import InferenceConfig

__all__ = ["REVIEW_QUESTION", "REVIEW_SESSION", "Reviews"]

#: Session id of the frames made from reviewed inspection images (labels need a session).
REVIEW_SESSION = "line-inspections"
#: The question a review label answers (labels.question): the quality engineer's verdict on the part.
REVIEW_QUESTION = "verdict"


class Reviews:
    """The review half of :class:`~jangin.inference.inspection.InspectionService` (a mixin: it needs
    ``ds``, ``config``, ``get`` and ``image_bytes``)."""

    ds: Dataset
    config: InferenceConfig
    _review_lock: threading.Lock

    def get(self, inspection_id: str) -> dict[str, Any]: ...  # provided by the service

    def image_bytes(self, inspection_id: str) -> tuple[bytes, str]: ...  # provided by the service

    def review(
        self, inspection_id: str, verdict: str, *, reviewer: str, comment: str | None = None
    ) -> dict[str, Any]:
        """Record a review: a ``reviews`` row, and a class label (source ``review``) on the inspected
        image, which is stored as a ``frames`` row first (``frame_id = stable_id("frame", "inspection",
        inspection_id)``, ``session_id = "line-inspections"``, ``source_uri = "inspection:<id>"``).
        The label's ``external_id`` is the review id and ``geometry_json`` names the inspection.
        A later review of the same inspection supersedes the earlier label.

        Without a kept or cached image, only the review is recorded (``label_id`` None).

        Raises:
            NotFoundError: No such inspection.
            ValueError: ``verdict`` is not OK or NG.
        """
        if verdict not in ("OK", "NG"):
            raise ValueError(f"review verdict must be OK or NG, got {verdict!r}")
        row = self.get(inspection_id)
        now = datetime.now(UTC)
        review_id = new_id("rev")
        with self._review_lock:
            self.ds.append(
                "reviews",
                [
                    ReviewRow(
                        review_id=review_id,
                        inspection_id=inspection_id,
                        reviewer=reviewer,
                        verdict=verdict,
                        comment=comment,
                        ts=now,
                    )
                ],
                source="review",
            )
            label_id = frame_id = None
            try:
                data, _ = self.image_bytes(inspection_id)
            except NotFoundError:
                data = None
            if data is not None:
                frame_id = self._frame_of(row, data)
                label_id = new_id("lbl")
                prior = self._prior_review_label(frame_id)
                self.ds.append(
                    "labels",
                    [
                        LabelRow(
                            label_id=label_id,
                            target="frame",
                            frame_id=frame_id,
                            session_id=REVIEW_SESSION,
                            kind="class",
                            name=verdict,
                            question=REVIEW_QUESTION,
                            source="review",
                            author=reviewer,
                            created_at=now,
                            supersedes=prior,
                            external_id=review_id,
                            geometry_json=json.dumps(
                                {
                                    "inspection_id": inspection_id,
                                    "review_id": review_id,
                                    "model_verdict": row["verdict"],
                                    "model": f"{row['model']}:{row['model_version']}",
                                }
                            ),
                        )
                    ],
                    source="review",
                )
        return {
            "review_id": review_id,
            "inspection_id": inspection_id,
            "verdict": verdict,
            "model_verdict": row["verdict"],
            "reviewer": reviewer,
            "comment": comment,
            "ts": now.isoformat(),
            "frame_id": frame_id,
            "label_id": label_id,
        }

    def _frame_of(self, row: dict[str, Any], data: bytes) -> str:
        frame_id = stable_id("frame", "inspection", row["inspection_id"])
        existing = self.ds.read(
            "frames",
            columns=["frame_id"],
            filters=[("session_id", "=", REVIEW_SESSION), ("frame_id", "=", frame_id)],
        )
        if existing.num_rows:
            return frame_id
        import cv2

        img = decode_checked(data, max_pixels=self.config.max_pixels)
        if sniff(data) != "jpeg":
            _ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 95])
            data = buf.tobytes()
        ts = row["ts"] if isinstance(row["ts"], datetime) else datetime.fromisoformat(str(row["ts"]))
        self.ds.append(
            "frames",
            [
                {
                    "frame_id": frame_id,
                    "session_id": REVIEW_SESSION,
                    "camera": row.get("camera"),
                    "ts": ts,
                    "width": int(img.shape[1]),
                    "height": int(img.shape[0]),
                    "deidentified": False,
                    "source_uri": f"inspection:{row['inspection_id']}",
                    "station": row.get("station"),
                    "image": data,
                }
            ],
            source="review",
        )
        return frame_id

    def _prior_review_label(self, frame_id: str) -> str | None:
        con = self.ds.connect()
        try:
            r = con.execute(
                "SELECT label_id FROM current_labels WHERE frame_id = ? AND source = 'review' "
                "ORDER BY created_at DESC LIMIT 1",
                [frame_id],
            ).fetchone()
        finally:
            con.close()
        return r[0] if r else None
