"""Licences: the Apache-2.0 text and NOTICE in every distribution and wheel, no GPL/AGPL package in the
installed dependency closure of the distributions a plant runs beside the line, and the architecture
licence recorded in every model manifest."""

from __future__ import annotations

import ast
import importlib.metadata as md
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from jangin.core import ModelManifest, ModelRegistry
from jangin.core.cli import main

REPO = Path(__file__).resolve().parents[2]
DISTRIBUTIONS = {
    ".": "jangin",
    "core": "jangin-core",
    "capture": "jangin-capture",
    "labeling": "jangin-labeling",
    "training": "jangin-training",
    "inference": "jangin-inference",
}
#: The distributions that must stay free of (A)GPL code: what an edge box or a capture PC installs.
PERMISSIVE = ("jangin-core", "jangin-capture", "jangin-labeling", "jangin-inference")
_COPYLEFT = re.compile(r"\b(AGPL|GPL)(?:-?[0-9.]+)?|GNU (?:Affero )?General Public License|AGPLv3|GPLv[23]")
_WEAK = re.compile(r"\bLGPL|Lesser General Public License|Library General Public License")


def _closure(root: str) -> dict[str, md.Distribution]:
    """Every installed distribution ``root`` needs (its requirements, recursively, without extras)."""
    seen: dict[str, md.Distribution] = {}
    todo = [root]
    while todo:
        name = canonicalize_name(todo.pop())
        if name in seen:
            continue
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            continue  # not installed here (a platform-specific requirement): nothing to inspect
        seen[name] = dist
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return seen


def _licence(dist: md.Distribution) -> str:
    """What the distribution says its licence is: License-Expression, licence classifiers, License."""
    meta = dist.metadata
    parts = [meta.get("License-Expression") or ""]
    parts += [c for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
    parts.append((meta.get("License") or "")[:500])
    said = " ".join(p for p in parts if p).strip()
    if said:
        return said
    # Nothing in the metadata (label-studio-sdk): the first lines of its licence file.
    for f in dist.files or []:
        if re.match(r"(?i)(licen[cs]e|copying)", f.name):
            return Path(dist.locate_file(f)).read_text(errors="replace")[:300]
    return ""


def _copyleft(closure: dict[str, md.Distribution]) -> dict[str, str]:
    out = {}
    for name, dist in closure.items():
        text = _licence(dist)
        if _COPYLEFT.search(_WEAK.sub("", text)):
            out[name] = text
    return out


@pytest.mark.parametrize("root", PERMISSIVE)
def test_no_gpl_or_agpl_in_the_dependency_closure(root: str) -> None:
    closure = _closure(root)
    assert len(closure) > 10 and canonicalize_name(root) in closure  # the walk found the installed tree
    assert _copyleft(closure) == {}
    # LGPL is allowed when dynamically linked and replaceable; today there is none: report if one appears.
    assert {n: _licence(d) for n, d in closure.items() if _WEAK.search(_licence(d))} == {}


_HEADING = re.compile(r"^\s*GNU (AFFERO |LESSER |LIBRARY )?GENERAL PUBLIC LICENSE\s*$", re.MULTILINE)


def _bundled(closure: dict[str, md.Distribution]) -> dict[str, set[str]]:
    """Per distribution, the GNU licences whose full text its third-party notices carry (bundled code):
    ``{"LESSER "}`` for the LGPL, ``{""}`` for the GPL, ``{"AFFERO "}`` for the AGPL."""
    out: dict[str, set[str]] = {}
    for name, dist in closure.items():
        for f in dist.files or []:
            if re.match(r"(?i).*(3rd|third).?party.*", f.name) and f.suffix in ("", ".txt", ".md"):
                text = Path(dist.locate_file(f)).read_text(errors="replace")
                kinds = {m.group(1) or "" for m in _HEADING.finditer(text)}
                if kinds:
                    out.setdefault(name, set()).update(kinds)
    return out


def test_bundled_lgpl_libraries_are_the_known_ones() -> None:
    """Decided: LGPL is acceptable where it is a separate, replaceable shared library. OpenCV's wheel
    bundles FFmpeg (LGPL-2.1) as .so files; the README says what that asks. A new one fails here."""
    closure: dict[str, md.Distribution] = {}
    for root in PERMISSIVE:
        closure |= _closure(root)
    assert _bundled(closure) == {"opencv-python-headless": {"LESSER "}}


def test_the_walk_finds_ultralytics_agpl_from_training() -> None:
    found = _copyleft(_closure("jangin-training"))
    assert "ultralytics-opencv-headless" in found
    assert "Affero" in found["ultralytics-opencv-headless"] or "AGPL" in found["ultralytics-opencv-headless"]


def test_licence_and_notice_in_every_distribution() -> None:
    text = (REPO / "LICENSE").read_text()
    assert text.lstrip().startswith("Apache License") and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text and len(text) > 10_000
    notice = (REPO / "NOTICE").read_text()
    assert "Apache License, Version 2.0" in notice and "AGPL-3.0" in notice
    for folder, dist in DISTRIBUTIONS.items():
        root = REPO / folder
        assert (root / "LICENSE").read_text() == text, folder
        assert (root / "NOTICE").read_text() == notice, folder
        pyproject = (root / "pyproject.toml").read_text()
        assert 'license = "Apache-2.0"' in pyproject, dist
        assert 'license-files = ["LICENSE", "NOTICE"]' in pyproject, dist
    core = (REPO / "core" / "pyproject.toml").read_text()
    assert '"click' in core and "pytz" not in core


@pytest.mark.slow
def test_every_wheel_carries_the_licence(tmp_path: Path) -> None:
    """Apache-2.0 §4(a): the licence text goes with every copy, so with every wheel."""
    pytest.importorskip("hatchling", reason="install the dev extra (hatchling) to build wheels offline")
    folders = [str(REPO / f) for f in DISTRIBUTIONS]
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "-q",
        "--no-deps",
        "--no-build-isolation",
        "-w",
        str(tmp_path),
    ]
    subprocess.run([*cmd, *folders], check=True, timeout=300, capture_output=True)
    wheels = sorted(tmp_path.glob("*.whl"))
    assert len(wheels) == len(DISTRIBUTIONS)
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as z:
            names = z.namelist()
            lic = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
            assert lic and b"Apache License" in z.read(lic[0]), wheel.name
            assert any(n.endswith(".dist-info/licenses/NOTICE") for n in names), wheel.name
            meta = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
            assert "License-Expression: Apache-2.0" in meta and "License-File: LICENSE" in meta


# -- the architecture licence in model manifests ---------------------------------------------------

_WRITERS = {
    "_detect": "AGPL-3.0 (Ultralytics",
    "_classify": "AGPL-3.0 (Ultralytics",
    "_anomaly": "Apache-2.0 (",  # anomalib PatchCore / PaDiM, or Jangin's own cutpaste / draem networks
    "_process": "BSD-3-Clause (scikit-learn",
    "_skill": "Apache-2.0 (Jangin",
}


@pytest.mark.parametrize(("module", "prefix"), sorted(_WRITERS.items()))
def test_every_manifest_writer_records_the_architecture_licence(module: str, prefix: str) -> None:
    source = (REPO / "training" / "src" / "jangin" / "training" / f"{module}.py").read_text()
    tree = ast.parse(source)
    tables = {  # module-level NAME = {...} tables a manifest may take its licence from, by key
        t.id: node.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict)
        for t in node.targets
        if isinstance(t, ast.Name)
    }
    calls = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "ModelManifest"
    ]
    assert calls, module
    for call in calls:
        kw = {k.arg: k.value for k in call.keywords}
        assert "architecture_licence" in kw, module
        value = kw["architecture_licence"]
        if isinstance(value, ast.Subscript) and isinstance(value.value, ast.Name):
            table = tables.get(value.value.id)
            assert table is not None and table.values, (module, ast.dump(value))
            texts = [v.value for v in table.values if isinstance(v, ast.Constant)]
            assert len(texts) == len(table.values), (module, "every entry a literal")
        else:
            texts = [
                value.value
                if isinstance(value, ast.Constant)
                else "".join(v.value for v in value.values if isinstance(v, ast.Constant))  # type: ignore[attr-defined]
            ]
        for text in texts:
            assert text.startswith(prefix), (module, text)


def test_models_show_prints_the_licence(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("jangin.training")
    reg = ModelRegistry(tmp_path / "models")
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"not really onnx")
    new = reg.add(
        ModelManifest(name="boxes", task="detect", architecture_licence="AGPL-3.0 (Ultralytics YOLO)"),
        {"model.onnx": onnx},
    )
    main(["models", "show", f"boxes:{new.manifest.version}", "--registry", str(reg.root)])
    assert json.loads(capsys.readouterr().out)["architecture_licence"] == "AGPL-3.0 (Ultralytics YOLO)"

    old = reg.add(ModelManifest(name="old", task="anomaly"), {"model.onnx": onnx})
    path = old.path / "manifest.json"
    data = json.loads(path.read_text())
    del data["architecture_licence"]  # a manifest written before the field existed
    path.write_text(json.dumps(data))
    main(["models", "show", f"old:{old.manifest.version}", "--registry", str(reg.root)])
    assert json.loads(capsys.readouterr().out)["architecture_licence"] == "unknown"
