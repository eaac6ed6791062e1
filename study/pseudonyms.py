"""Pseudonyms for case ids: ``C-0001`` ... numbered in the order of the sha256 of the case ids.

The numbering is stable for a given set of case ids and reveals neither the ids nor their
order. A study numbers the case ids of its manifest (``cases.parquet``), so results.json
(when the protocol's ``report.pseudonymise_case_ids`` is on), the failure analysis and the
example images all use the same pseudonym for a case.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path


def pseudonyms(case_ids: Iterable[str]) -> dict[str, str]:
    """``case_id -> 'C-0001'``, numbered in the order of sha256(case_id): stable, reveals no order."""
    ids = sorted({str(c) for c in case_ids}, key=lambda c: (hashlib.sha256(c.encode("utf-8")).hexdigest(), c))
    width = max(4, len(str(len(ids))))
    return {c: f"C-{i + 1:0{width}d}" for i, c in enumerate(ids)}


def study_pseudonyms(results_dir: str | os.PathLike[str]) -> dict[str, str]:
    """The pseudonym of every case of a study (its ``cases.parquet``), by case id."""
    import pandas as pd

    cases = pd.read_parquet(Path(results_dir) / "cases.parquet", columns=["case_id"])
    return pseudonyms(cases["case_id"].astype(str))
