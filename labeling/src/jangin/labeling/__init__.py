"""Labeling: labels from expert judgments and label files, and the Label Studio round trip."""

from __future__ import annotations

from jangin.labeling._labels import append_new_labels, import_box_csv, labels_from_judgments

__all__ = ["append_new_labels", "import_box_csv", "labels_from_judgments"]
