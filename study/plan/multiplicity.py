"""Multiplicity-adjusted p-values across the confirmatory endpoints.

Adjusted p-values ``q_j``: endpoint ``j`` is rejected (its hypothesis met) at family-wise
level ``alpha`` exactly when ``q_j <= alpha``.

- Bonferroni and Holm (1979): ``statsmodels.stats.multitest.multipletests``;
- fixed sequence (hierarchical; Maurer, Hothorn & Lehmacher 1995): ``q_j = max_{i <= j} p_i``
  in the pre-specified order, so an endpoint after one that is not met is not met either;
- graphical (Bretz, Maurer, Brannath & Posch 2009, Statistics in Medicine 28:586-604,
  the adjusted p-value algorithm of section 3 / Algorithm 1): repeatedly reject the
  hypothesis with the smallest ``p_j / w_j``, pass its weight along the graph and update
  the graph; Holm and the fixed sequence are special graphs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["adjust_p_values", "graphical_adjusted"]


def graphical_adjusted(p: Sequence[float], *, weights: Sequence[float], transitions: Sequence[Sequence[float]]) -> list[float]:
    """Adjusted p-values of the graphical procedure (Bretz et al. 2009).

    Parameters
    ----------
    p : one-sided raw p-values, one per hypothesis.
    weights : initial local weights ``w`` (``sum(w) <= 1``).
    transitions : matrix ``G`` (``G[i][j]``: share of ``i``'s weight passed to ``j``; zero diagonal).

    Returns
    -------
    list of float
        ``q_j``; hypothesis ``j`` is rejected at level ``alpha`` iff ``q_j <= alpha``.
    """
    pv = np.asarray(p, dtype=float)
    w = np.asarray(weights, dtype=float).copy()
    g = np.asarray(transitions, dtype=float).copy()
    k = len(pv)
    if w.shape != (k,) or g.shape != (k, k):
        raise ValueError(f"need {k} weights and a {k} x {k} transition matrix")
    active = list(range(k))
    q = np.ones(k)
    running = 0.0
    while active:
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.array([pv[j] / w[j] if w[j] > 0 else np.inf for j in active])
        j = active[int(np.argmin(ratio))]
        running = max(running, min(1.0, float(ratio.min())))
        q[j] = running
        active.remove(j)
        new_w = w.copy()
        new_g = np.zeros_like(g)
        for l in active:
            new_w[l] = w[l] + w[j] * g[j, l]
            for m in active:
                if l == m:
                    continue
                denom = 1.0 - g[l, j] * g[j, l]
                new_g[l, m] = (g[l, m] + g[l, j] * g[j, m]) / denom if denom > 1e-12 else 0.0
        new_w[j] = 0.0
        w, g = new_w, new_g
    return q.tolist()


def adjust_p_values(p: Sequence[float], *, procedure: str, weights: Sequence[float] | None = None,
                    transitions: Sequence[Sequence[float]] | None = None) -> list[float]:
    """Multiplicity-adjusted p-values, in the order given (the plan's ``multiplicity.endpoints``).

    Parameters
    ----------
    p : raw one-sided p-values (use 1 for an endpoint that is not estimable).
    procedure : ``"fixed_sequence"``, ``"holm"``, ``"bonferroni"`` or ``"graphical"``.
    weights, transitions : the graph (``graphical`` only).
    """
    pv = [min(1.0, max(0.0, float(x))) for x in p]
    if procedure == "fixed_sequence":
        return np.maximum.accumulate(pv).tolist() if pv else []
    if procedure in ("holm", "bonferroni"):
        from statsmodels.stats.multitest import multipletests

        return multipletests(pv, method=procedure)[1].tolist()
    if procedure == "graphical":
        if weights is None or transitions is None:
            raise ValueError("the graphical procedure needs weights and transitions")
        return graphical_adjusted(pv, weights=weights, transitions=transitions)
    raise ValueError(f"unknown procedure {procedure!r}")
