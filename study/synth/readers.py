"""Simulated dermatologists' readings of a synthetic cohort."""

from __future__ import annotations

import numpy as np

from study.synth.vocabulary import LEVELS, grading

#: default simulated readers: (reader_id, group, probability of a grading error, share of the
#: non-core cases read).  Juniors err more than intermediates, intermediates more than seniors.
#: how strongly an image's difficulty score moves a reader's error probability (logit per SD)
DIFFICULTY_LOGIT = 2.0

DEFAULT_READERS: list[tuple[str, str, float, float]] = [
    ("junior-1", "junior", 0.34, 0.6),
    ("junior-2", "junior", 0.30, 0.5),
    ("intermediate-1", "intermediate", 0.20, 0.6),
    ("intermediate-2", "intermediate", 0.17, 0.5),
    ("intermediate-3", "intermediate", 0.15, 1.0),
    ("senior-1", "senior", 0.07, 1.0),
    ("senior-2", "senior", 0.09, 0.5),
]


def simulate_readings(reference: dict[str, str], counts: dict[str, dict[str, int]], *, seed: int,
                      readers: list[tuple[str, str, float, float]] | None = None,
                      core_fraction: float = 0.4,
                      difficulty: dict[str, float] | None = None) -> list[dict[str, str]]:
    """Simulated dermatologists' grades.

    Every reader grades a core block of cases (``core_fraction`` of them, so a fully
    crossed MRMC analysis is possible); each reader grades each remaining case with their
    ``share`` probability (a partially crossed design, as in ACNE04's reader study), and
    every case is read by at least two readers. A reader errs with their error probability,
    1.5x higher when the grade rests on a single defining lesion (one lesion of the classes of the
    protocol's rule for that grade: easy to overlook). Errors
    are one grade in 85% of cases and two grades otherwise, and go down (the reader missed
    the most severe lesion) with probability 0.7 where both directions are possible.
    ``difficulty`` (case id -> standard-normal score, shared within a patient by
    :func:`study.synth.planning.correlate_within_patients`) shifts every reader's error
    probability on the logit scale by ``DIFFICULTY_LOGIT * difficulty``.

    Returns rows ``{reader_id, reader_group, case_id, grade}`` ordered by reader, then case.
    """
    readers = readers or DEFAULT_READERS
    rng = np.random.default_rng([seed, 2])
    case_ids = list(reference)
    n = len(case_ids)
    perm = rng.permutation(n)
    core = set(int(i) for i in perm[: int(round(n * core_fraction))])
    reads: dict[str, set[int]] = {}
    for rid, _g, _p, share in readers:
        reads[rid] = set(core) | {i for i in range(n) if i not in core and rng.random() < share}
    for i in range(n):
        readers_of = [rid for rid in reads if i in reads[rid]]
        while len(readers_of) < 2:
            rid = readers[int(rng.integers(0, len(readers)))][0]
            if rid not in readers_of:
                reads[rid].add(i)
                readers_of.append(rid)
    # the classes whose presence gives each grade (the protocol's rules; the default level has none)
    defining = {rule.level: list(rule.any_of) for rule in grading().rules or []}
    rows: list[dict[str, str]] = []
    for rid, group, p_err, _share in readers:
        rr = np.random.default_rng([seed, 3, sum(map(ord, rid))])
        for i in sorted(reads[rid]):
            cid = case_ids[i]
            g = LEVELS.index(reference[cid])
            c = counts[cid]
            single = sum(c.get(k, 0) for k in defining.get(reference[cid], [])) == 1
            p = min(0.9, p_err * (1.5 if single else 1.0))
            if difficulty is not None and cid in difficulty:
                p = float(1 / (1 + np.exp(-(np.log(p / (1 - p)) + DIFFICULTY_LOGIT * difficulty[cid]))))
            u_err, u_dir, u_mag = rr.random(), rr.random(), rr.random()
            if u_err < p:
                step = 1 if u_mag < 0.85 else 2
                down_ok, up_ok = g - 1 >= 0, g + 1 < len(LEVELS)
                go_down = down_ok and (not up_ok or u_dir < 0.7)
                g = max(0, g - step) if go_down else min(len(LEVELS) - 1, g + step)
            rows.append({"reader_id": rid, "reader_group": group, "case_id": cid, "grade": LEVELS[g]})
    return rows
