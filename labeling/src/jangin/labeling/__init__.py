"""Labeling: labels from expert judgments and label files, and the Label Studio round trip.

Push frames and sensor windows to a Label Studio server (with model pre-annotations read from the
``labels`` table), pull the annotations back as label rows, import a Label Studio JSON export without
a server, import label tables (one question's answers per session, frame or span from a CSV or
Parquet file), and export labels as YOLO, COCO or a Hugging Face–loadable Parquet dataset.
"""

from __future__ import annotations

from jangin.labeling._client import LabelStudioClient
from jangin.labeling._export import export_labels
from jangin.labeling._labels import append_new_labels, import_box_csv, labels_from_judgments
from jangin.labeling._pull import PullResult, import_export, pull
from jangin.labeling._push import PushResult, push
from jangin.labeling._schema import LabelGroup, LabelSchema, load_schema
from jangin.labeling._table import LabelTableError, LabelTableResult, import_label_table

__all__ = [
    "LabelGroup",
    "LabelSchema",
    "LabelStudioClient",
    "LabelTableError",
    "LabelTableResult",
    "PullResult",
    "PushResult",
    "append_new_labels",
    "export_labels",
    "import_box_csv",
    "import_export",
    "import_label_table",
    "labels_from_judgments",
    "load_schema",
    "pull",
    "push",
]
