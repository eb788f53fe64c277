"""Run Ultralytics with no network access: call :func:`ultralytics_offline` before importing it.

Every network access of Ultralytics 8.4.190 on the detect train / val / predict / ONNX export paths
(found by reading its source), and how it is switched off here:

* ``utils.ONLINE = is_online()``, DNS lookups at import: ``YOLO_OFFLINE=1`` (read at import). Also
  gates ``check_pip_update_available`` (PyPI, in ``Model.train``), Sentry and analytics.
* ``check_font``: ``Arial.ttf`` / ``Arial.Unicode.ttf`` fetched from GitHub (a ``HEAD`` request, then
  the download) by the dataset check and every plot, even with ``plots=False``: matplotlib's bundled
  DejaVuSans is copied under both names into ``$YOLO_CONFIG_DIR/Ultralytics/``.
* ``check_amp`` loads ``yolo26n.pt`` and downloads it when missing (CUDA with ``amp=True`` only): never
  reached, the trainer gets ``amp=False`` on CPU and ``amp="bf16"`` (which skips the check) on CUDA.
* ``events`` (analytics) and Sentry: ``settings.sync=False``.
* Platform callbacks (stream metrics, upload checkpoints): ``ULTRALYTICS_API_KEY`` is removed from
  the environment and ``settings.api_key`` emptied.
* ClearML, Comet, DVC, MLflow, Ray Tune, TensorBoard, W&B callbacks: their settings set to ``False``.
* ``check_requirements`` auto ``pip install`` (e.g. ``onnxslim`` on export): ``YOLO_AUTOINSTALL=0``;
  the export uses ``simplify=False``.
* ``attempt_download_asset`` for a weights name that is not a file: ``train_detector`` accepts only
  local weights files and model YAMLs.
* ``check_det_dataset`` downloads a data YAML's ``download:`` URL when images are missing: our
  ``data.yaml`` has no such key.
* ``settings.json`` written under ``~/.config/Ultralytics``: ``YOLO_CONFIG_DIR`` (read at import).

Not Ultralytics but on the same path: ONNX Runtime's native telemetry (see :func:`import_onnxruntime`).

``YOLO_CONFIG_DIR``, ``YOLO_OFFLINE`` and ``ULTRALYTICS_API_KEY`` are read when Ultralytics is first
imported; a process that imported it earlier keeps its first config directory (the fonts are then put
there as well).
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path

from jangin.core._onnx import import_onnxruntime

__all__ = ["import_onnxruntime", "ultralytics_offline"]

log = logging.getLogger(__name__)

#: Font names Ultralytics asks for: ASCII class names, and any other script (e.g. Hangul).
_FONTS = ("Arial.ttf", "Arial.Unicode.ttf")

#: Integrations that would log to a remote service when their package happens to be installed.
_INTEGRATIONS = ("clearml", "comet", "dvc", "mlflow", "raytune", "tensorboard", "wandb")


def ultralytics_offline(config_dir: Path) -> Path:
    """Configure Ultralytics so that nothing it does reaches the network, then import it.

    Sets ``YOLO_CONFIG_DIR``, ``YOLO_OFFLINE=1`` and ``YOLO_AUTOINSTALL=0``, installs a bundled font
    under the names Ultralytics would otherwise download, and turns analytics, the Platform and every
    experiment-tracker integration off in Ultralytics' settings. Idempotent and cheap to repeat.

    Args:
        config_dir: Directory for Ultralytics' settings and fonts (``<config_dir>/Ultralytics``); runs,
            weights and datasets directories of its settings are put below it too.

    Returns:
        The Ultralytics user config directory actually in use.
    """
    config_dir = Path(config_dir).expanduser().resolve()
    already_imported = "ultralytics" in sys.modules
    os.environ["YOLO_CONFIG_DIR"] = str(config_dir)
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ["YOLO_AUTOINSTALL"] = "0"
    # A library prints nothing of its own accord: Ultralytics' per-step logs only when asked for.
    os.environ.setdefault("YOLO_VERBOSE", "False")
    os.environ["ORT_DISABLE_TELEMETRY"] = "1"  # in case Ultralytics loads onnxruntime (see below)
    # The Platform callbacks stream metrics and upload checkpoints whenever this key is set.
    os.environ.pop("ULTRALYTICS_API_KEY", None)
    ours = config_dir / "Ultralytics"
    _install_fonts(ours)

    import ultralytics
    from ultralytics import utils as yutils

    in_use = Path(yutils.USER_CONFIG_DIR)
    if in_use != ours:
        # Imported earlier with another config dir: that one is where check_font looks.
        _install_fonts(in_use)
    if already_imported and getattr(yutils, "ONLINE", False):
        log.warning(
            "ultralytics was imported before ultralytics_offline() without YOLO_OFFLINE=1; "
            "its import-time online check may have reached the network"
        )
    updates: dict[str, object] = {key: False for key in _INTEGRATIONS}
    updates.update(
        sync=False,
        api_key="",
        vscode_msg=False,
        openvino_msg=False,
        runs_dir=str(config_dir / "runs"),
        weights_dir=str(config_dir / "weights"),
        datasets_dir=str(config_dir / "datasets"),
    )
    current = ultralytics.settings
    if any(current.get(k) != v for k, v in updates.items()):
        current.update(updates)
    return in_use


def _install_fonts(directory: Path) -> None:
    from matplotlib import get_data_path

    source = Path(get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    directory.mkdir(parents=True, exist_ok=True)
    for name in _FONTS:
        target = directory / name
        if not target.is_file():
            tmp = target.with_name(f".{name}.{os.getpid()}.tmp")
            shutil.copyfile(source, tmp)
            os.replace(tmp, target)
