"""A second, model-aided reading session of a synthetic cohort, and 0-100 confidence ratings.

The same simulated readers read the cohort again after a washout, each case shown with an AI
suggestion (a simulated aid: the reference grade, wrong with probability ``aid_error`` by one
grade). Aided, a reader:

- errs less: the unaided error probability times ``error_ratio`` (fewer misses);
- follows the aid's errors (automation bias): where the aid is wrong, the reader takes its grade
  with probability ``automation_bias``;
- may read only part of the cases: the last ``partial_readers`` readers read each of their
  unaided cases aided with probability ``partial_share`` (a partially paired design).

Every reading (both sessions) gets a ``confidence``: the reader's severity rating on 0-100, a
continuous score whose bins are the grades -- ``100 (g + u) / K`` with ``g`` the grade given,
``K`` the number of grades and ``u`` uniform in (0.05, 0.95) -- so that ranking by confidence
refines ranking by grade and suits an MRMC ROC analysis of any "grade k or worse" endpoint.
"""

from __future__ import annotations

import numpy as np

from study.synth.vocabulary import LEVELS

__all__ = ["AIDED", "UNAIDED", "add_confidence", "simulate_aided_readings"]

UNAIDED, AIDED = "unaided", "aided"


def _confidence(rng: np.random.Generator, grade: str) -> str:
    g = LEVELS.index(grade)
    return f"{100 * (g + rng.uniform(0.05, 0.95)) / len(LEVELS):.1f}"


def add_confidence(rows: list[dict[str, str]], *, seed: int, modality: str = UNAIDED) -> list[dict[str, str]]:
    """``rows`` with ``modality`` and a 0-100 ``confidence`` consistent with each grade."""
    rng = np.random.default_rng([seed, 7])
    return [{**r, "modality": modality, "confidence": _confidence(rng, r["grade"])} for r in rows]


def simulate_aided_readings(reference: dict[str, str], unaided: list[dict[str, str]], *, seed: int,
                            readers: list[tuple[str, str, float, float]], aid_error: float = 0.15,
                            error_ratio: float = 0.5, automation_bias: float = 0.4, partial_readers: int = 2,
                            partial_share: float = 0.6) -> list[dict[str, str]]:
    """The aided session: rows ``{reader_id, reader_group, case_id, grade, modality, confidence}``.

    Parameters
    ----------
    reference : dict
        Case -> reference grade.
    unaided : list of dict
        The unaided session (:func:`study.synth.readers.simulate_readings`); aided readers read
        the cases they read unaided (or part of them).
    seed : int
    readers : list of (reader_id, group, error probability, share)
        As for the unaided session.
    aid_error, error_ratio, automation_bias, partial_readers, partial_share : float, int
        The aid's error rate; the aided error probability over the unaided one; the probability
        of taking the aid's wrong grade; how many readers (the last ones) read only part of the
        cases aided, and which share.
    """
    rng = np.random.default_rng([seed, 11])
    case_ids = list(reference)
    aid: dict[str, str] = {}
    for cid in case_ids:
        g = LEVELS.index(reference[cid])
        if rng.random() < aid_error:
            g = min(len(LEVELS) - 1, g + 1) if g == 0 or (g < len(LEVELS) - 1 and rng.random() < 0.5) else g - 1
        aid[cid] = LEVELS[g]
    partial = {rid for rid, *_ in readers[len(readers) - partial_readers:]} if partial_readers else set()
    p_err = {rid: p for rid, _g, p, _s in readers}
    rows: list[dict[str, str]] = []
    for r in unaided:
        rid, cid = r["reader_id"], r["case_id"]
        if rid in partial and rng.random() > partial_share:
            continue
        truth = LEVELS.index(reference[cid])
        if aid[cid] != reference[cid] and rng.random() < automation_bias:
            g = LEVELS.index(aid[cid])
        elif rng.random() < p_err.get(rid, 0.2) * error_ratio:
            step = 1 if rng.random() < 0.85 else 2
            down = truth - step >= 0 and (truth + step >= len(LEVELS) or rng.random() < 0.7)
            g = truth - step if down else min(len(LEVELS) - 1, truth + step)
        else:
            g = truth
        rows.append({"reader_id": rid, "reader_group": r["reader_group"], "case_id": cid, "grade": LEVELS[g],
                     "modality": AIDED, "confidence": _confidence(rng, LEVELS[g])})
    return rows
