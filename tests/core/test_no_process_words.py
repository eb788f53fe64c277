"""No process vocabulary in stage code: processes are data (process definitions), not code.

The welding sample's words (its channel names, "weld", "arc") may appear in the process definition
YAML, the sample data and its generator, the tests and the demo that drives the samples, but never in
the code of the five stages. ``torch`` alone is not a welding word here: it is also PyTorch.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STAGES = ("core", "capture", "labeling", "training", "inference")

#: (what, pattern): channel names of the welding sample, and the words "weld…" and "arc".
WORDS: list[tuple[str, re.Pattern[str]]] = [
    ("arc_current", re.compile(r"arc_current", re.IGNORECASE)),
    ("arc_voltage", re.compile(r"arc_voltage", re.IGNORECASE)),
    ("torch_angle", re.compile(r"torch_angle", re.IGNORECASE)),
    ("travel_speed", re.compile(r"travel_speed", re.IGNORECASE)),
    ("wire_feed", re.compile(r"wire_feed", re.IGNORECASE)),
    ("weld", re.compile(r"\bweld(ing|s|er|ers|ed)?\b", re.IGNORECASE)),
    ("arc", re.compile(r"\barc\b", re.IGNORECASE)),
]


def find_process_words(files: list[Path], root: Path) -> list[str]:
    """``file:line: word: text`` for every line of ``files`` holding one of :data:`WORDS`."""
    hits = []
    for path in files:
        for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for what, pattern in WORDS:
                if pattern.search(line):
                    hits.append(f"{path.relative_to(root).as_posix()}:{no}: {what}: {line.strip()[:100]}")
    return hits


def _stage_files() -> list[Path]:
    return sorted(p for stage in STAGES for p in (ROOT / stage / "src").rglob("*.py"))


def test_stage_code_holds_no_process_words() -> None:
    files = _stage_files()
    assert len(files) > 50  # the stages' code was found (a wrong root would pass vacuously)
    hits = find_process_words(files, ROOT)
    assert not hits, "process words in stage code (move them to a process definition):\n" + "\n".join(hits)


@pytest.mark.parametrize(
    ("line", "found"),
    [
        ("x = sig['arc_current_A']", ["arc_current"]),
        ("# the weld pool grows", ["weld"]),
        ("'welding' and 'Welders'", ["weld"]),
        ("when the arc strikes", ["arc"]),
        ("TORCH_ANGLE_deg, travel_speed_mm_s, wire_feed_m_min", ["torch_angle", "travel_speed", "wire_feed"]),
        ("import torch; torch.nn.Linear", []),  # PyTorch is not a welding word
        ("search, archive, arcsin, welded_joint_count", []),  # inside other words
    ],
)
def test_the_word_list_finds_what_it_should_and_nothing_else(
    tmp_path: Path, line: str, found: list[str]
) -> None:
    f = tmp_path / "mod.py"
    f.write_text(f"{line}\n")
    hits = find_process_words([f], tmp_path)
    assert [h.split(": ")[1] for h in hits] == found
    assert all(h.startswith("mod.py:1: ") for h in hits)


def test_the_files_of_this_branch_are_clean() -> None:
    """The stage files this branch cleaned stay clean (these never depended on other branches)."""
    mine = [
        "capture/src/jangin/capture/_offsets.py",
        "core/src/jangin/core/progress.py",
        "inference/src/jangin/inference/__init__.py",
        "inference/src/jangin/inference/_detector.py",
    ]
    assert find_process_words([ROOT / f for f in mine], ROOT) == []
