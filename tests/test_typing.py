"""mypy --strict on the typed layers: the results models and the report modules that read them.

Runs ``python -m mypy --strict`` (configuration: ``[tool.mypy]`` in pyproject.toml) and fails
with mypy's own output. Skipped only when mypy is not installed (it is in the test extras).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: what must stay clean under --strict (files or packages, relative to the repository root)
STRICT = [
    "study/results",
    "study/collect.py",
    "study/report",
    "study/commands/schema.py",
]


def test_typed_layers_are_clean_under_mypy_strict(tmp_path):
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed (pip install -e '.[test]' installs it)")
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "mypy-cache"), *STRICT],
        cwd=ROOT, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"mypy --strict found problems:\n{proc.stdout}{proc.stderr}"
