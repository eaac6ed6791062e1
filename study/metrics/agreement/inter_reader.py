"""Agreement between readers: pairwise Cohen's kappas, Fleiss' kappa, Krippendorff's ordinal alpha.

Pairwise kappas (each reader pair on the cases both read) have the Wald-ASE interval with
the patient-bootstrap interval as ``bootstrap``; Fleiss' kappa (on the reader set and the
cases they all read that use the most readings) and Krippendorff's alpha (every reading of
the cases read by two or more readers) have the patient bootstrap as their interval.

References
----------
Fleiss JL (1971), Psychol Bull 76:378-382; Krippendorff K (2011), Computing Krippendorff's
alpha-reliability; Fleiss, Cohen & Everitt (1969), Psychol Bull 72:323-327.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from study.metrics.agreement.data import RatingData
from study.metrics.agreement.design import BootstrapDesign, BootstrapPass, Intervals
from study.metrics.agreement.stats import (
    KAPPA_WEIGHTS,
    fleiss_kappa_from_sums,
    krippendorff_ordinal_from_coincidences,
)
from study.metrics.agreement.summary import with_bootstrap
from study.metrics.intervals import cohen_kappa, undefined
from study.results.agreement import (
    BootstrappedEstimate,
    FleissKappa,
    InterReader,
    KrippendorffAlpha,
    PairwiseAgreement,
    ReaderPair,
)

_NOTE = "readers only (models are compared with the reference and with readers)"


class PairBlock(NamedTuple):
    """Two readers, the number of cases both read, and the index of their table in the design."""

    reader_a: str
    reader_b: str
    n_shared: int
    block: int


class FleissSelection(NamedTuple):
    """The readers and the case positions Fleiss' kappa is computed on."""

    readers: list[str]
    cases: np.ndarray


def fleiss_selection(data: RatingData, readers: list[str]) -> FleissSelection | None:
    """Reader set and the cases they all read, maximising the number of readings used."""
    if len(readers) < 2:
        return None
    n = len(data.case_ids)
    member = np.zeros((n, len(readers)), dtype=bool)
    for j, r in enumerate(readers):
        member[data.raters[r].cases, j] = True
    patterns, counts = np.unique(member[member.sum(axis=1) >= 2], axis=0, return_counts=True)
    best = None
    for p in patterns[np.argsort(-counts)][:200]:
        cover = member[:, p].all(axis=1)
        score = (int(cover.sum()) * int(p.sum()), int(p.sum()))
        if best is None or score > best[0]:
            best = (score, p, cover)
    if best is None:
        return None
    _, p, cover = best
    return FleissSelection([r for r, keep in zip(readers, p) if keep], np.flatnonzero(cover))


def register_inter_reader(design: BootstrapDesign, readers: list[str]) -> tuple[list[PairBlock], FleissSelection | None]:
    """Add the reader-pair tables, Fleiss' rating counts and Krippendorff's coincidences to ``design``."""
    data = design.data
    pairs = []
    for a_i, a in enumerate(readers):
        for b in readers[a_i + 1:]:
            ca, cb = data.raters[a], data.raters[b]
            shared, ia, ib = np.intersect1d(ca.cases, cb.cases, assume_unique=True, return_indices=True)
            pairs.append(PairBlock(a, b, len(shared), design.block(("pair", a, b), shared, ca.codes[ia], cb.codes[ib])))
    k = len(data.levels)
    fleiss = fleiss_selection(data, readers)
    if fleiss is not None:
        mat = data.reading_matrix(fleiss.readers)[fleiss.cases]
        nij = np.stack([(mat == j).sum(axis=1) for j in range(k)], axis=1).astype(float)
        design.extra("fleiss", fleiss.cases, np.column_stack([nij, (nij ** 2).sum(axis=1), np.ones(len(fleiss.cases))]))
    if len(readers) >= 2:
        mat = data.reading_matrix(readers)
        nuc = np.stack([(mat == j).sum(axis=1) for j in range(k)], axis=1).astype(float)
        mu = nuc.sum(axis=1)
        pairable = np.flatnonzero(mu >= 2)
        nu = nuc[pairable]
        o = (nu[:, :, None] * nu[:, None, :] - nu[:, :, None] * np.eye(k)[None]) / (mu[pairable] - 1)[:, None, None]
        design.extra("krippendorff", pairable, o.reshape(len(pairable), k * k))
    return pairs, fleiss


def _pairwise(iv: Intervals, data: RatingData, boot: BootstrapPass, readers: list[str],
              pairs: list[PairBlock]) -> PairwiseAgreement:
    n = len(readers)
    pos = {r: i for i, r in enumerate(readers)}
    n_shared: list[list[int | None]] = [[None] * n for _ in range(n)]
    mats: dict[str, list[list[BootstrappedEstimate | None]]] = {name: [[None] * n for _ in range(n)]
                                                                for name in KAPPA_WEIGHTS}
    for i, r in enumerate(readers):
        n_shared[i][i] = len(data.raters[r].cases)
    entries = []
    for p in pairs:
        t = boot.tables[p.block]
        kappas = {name: with_bootstrap(cohen_kappa(t, weights=w, confidence=iv.confidence),
                                       iv.boot_sub(boot.obs_stats[name][p.block], boot.boot_stats[name][:, p.block]))
                  for name, w in KAPPA_WEIGHTS.items()}
        a, b = pos[p.reader_a], pos[p.reader_b]
        for name, e in kappas.items():
            mats[name][a][b] = mats[name][b][a] = e
        n_shared[a][b] = n_shared[b][a] = int(p.n_shared)
        entries.append(ReaderPair(reader_a=p.reader_a, reader_b=p.reader_b, n_cases=int(p.n_shared), **kappas))
    return PairwiseAgreement(readers=readers, n_shared=n_shared, **mats, pairs=entries,
                             rows_columns="readers in the order of 'readers'; diagonal n_shared = cases read")


def _fleiss(iv: Intervals, data: RatingData, boot: BootstrapPass, fleiss: FleissSelection | None) -> FleissKappa:
    if fleiss is None:
        return FleissKappa(kappa=undefined(iv.boot_method, "fewer than two readers read a common case"),
                           readers=[], n_cases=0, case_ids=[])
    obs, reps = boot.extra("fleiss")
    m = len(fleiss.readers)
    point = float(fleiss_kappa_from_sums(obs, m))
    e = (iv.boot(point, fleiss_kappa_from_sums(reps, m)) if np.isfinite(point) else
         undefined(iv.boot_method, "chance agreement is 1: kappa is undefined"))
    return FleissKappa(kappa=e, readers=fleiss.readers, n_cases=len(fleiss.cases),
                       case_ids=[str(c) for c in data.case_ids[fleiss.cases]],
                       selection="the reader set and the cases they all read that use the most readings")


def _krippendorff(iv: Intervals, data: RatingData, boot: BootstrapPass, readers: list[str]) -> KrippendorffAlpha:
    if "krippendorff" not in boot.extras:
        return KrippendorffAlpha(alpha=undefined(iv.boot_method, "fewer than two readers"), readers=readers, n_cases=0)
    k = len(data.levels)
    obs, reps = boot.extra("krippendorff")
    point = float(krippendorff_ordinal_from_coincidences(obs.reshape(k, k)))
    n_pairable = int(np.count_nonzero(
        np.bincount(np.concatenate([data.raters[r].cases for r in readers]), minlength=len(data.case_ids)) >= 2))
    e = (iv.boot(point, krippendorff_ordinal_from_coincidences(reps.reshape(-1, k, k))) if np.isfinite(point) else
         undefined(iv.boot_method, "no case read by two readers, or no variation in the readings"))
    return KrippendorffAlpha(alpha=e, readers=readers, n_cases=n_pairable,
                             note="all readings of cases read by at least two readers")


def inter_reader(iv: Intervals, data: RatingData, boot: BootstrapPass, readers: list[str], pairs: list[PairBlock],
                 fleiss: FleissSelection | None) -> InterReader:
    """Pairwise, Fleiss and Krippendorff agreement of ``readers`` from the bootstrap pass ``boot``."""
    return InterReader(readers=readers, note=_NOTE, pairwise=_pairwise(iv, data, boot, readers, pairs),
                       fleiss=_fleiss(iv, data, boot, fleiss),
                       krippendorff_alpha_ordinal=_krippendorff(iv, data, boot, readers))
