"""Shared test helpers: where the reference data lives, and a CLI runner."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
#: public reference data beside the checkout (../shared/data); absent in a user's fresh clone
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"reference data folder {SHARED_DATA} is absent (it sits beside the checkout in CI)")
    return SHARED_DATA


@pytest.fixture
def run_cli(capsys):
    """Run ``study ...`` in-process; return (exit status, stdout, stderr)."""
    from study.cli import main

    def _run(*argv: str):
        try:
            rc = main([str(a) for a in argv])
        except SystemExit as e:  # argparse errors
            rc = e.code if isinstance(e.code, int) else 2
        out, err = capsys.readouterr()
        return rc, out, err

    return _run
