"""Shared test helpers: where the reference data lives, and a CLI runner."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
#: public reference data copied into the repository (sources and licences: tests/data/README.md)
REFERENCE_DATA = REPO_ROOT / "tests" / "data"


@pytest.fixture
def reference_data() -> Path:
    """The public reference data (COCO demo pair, MRMC studies) kept in ``tests/data``."""
    return REFERENCE_DATA


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


def pycocotools_eval(gt: dict, dt: list, *, max_dets: int = 1000, img_ids=None, summarize: bool = False):
    """The reference: pycocotools' COCOeval (bbox) with maxDets [1, 10, max_dets], evaluated and
    accumulated (and summarized on request, so ``.stats`` is filled). Inputs are not modified."""
    import contextlib
    import copy
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        g = COCO()
        g.dataset = copy.deepcopy(gt)
        g.createIndex()
        ev = COCOeval(g, g.loadRes(copy.deepcopy(dt)), "bbox")
        if img_ids is not None:
            ev.params.imgIds = list(img_ids)
        ev.params.maxDets = [1, 10, max_dets]
        ev.evaluate()
        ev.accumulate()
        if summarize:
            ev.summarize()
    return ev
