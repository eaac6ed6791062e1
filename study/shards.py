"""Sharding the heavy per-image steps (image probing, the quality gate) and merging their shards.

A shard is a contiguous block of rows: rows ``[k * n // n_shards, (k + 1) * n // n_shards)``
of a table in a fixed order, so the shards partition the rows exactly (no row twice, none
left out) and each shard job reads only its block. Merging checks that the shards cover the
rows exactly once before it writes anything, so a stale or missing shard is an error, never
a silently shorter table.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import pandas as pd

from study.errors import StudyError


def shard_bounds(n: int, *, shard: int, n_shards: int) -> tuple[int, int]:
    """``(lo, hi)``: the half-open row range of shard ``shard`` of ``n_shards`` over ``n`` rows."""
    if n_shards < 1 or not 0 <= shard < n_shards:
        raise StudyError(f"shard {shard} of {n_shards}: need 0 <= shard < n_shards", file="shard")
    return shard * n // n_shards, (shard + 1) * n // n_shards


def shard_rows(table: pd.DataFrame, *, shard: int, n_shards: int) -> pd.DataFrame:
    """The rows of one shard of ``table`` (in the table's order), index kept."""
    lo, hi = shard_bounds(len(table), shard=shard, n_shards=n_shards)
    return table.iloc[lo:hi]


def merge_shard_tables(paths: Sequence[str | os.PathLike], *, key: str, order: Sequence, what: str) -> pd.DataFrame:
    """Concatenate shard tables and put their rows in ``order`` (values of column ``key``).

    Raises
    ------
    StudyError
        When a key is in no shard, in two shards, or in a shard but not in ``order`` (a
        shard left from an earlier run of another cohort): re-run the shards.
    """
    frames = [pd.read_parquet(p) for p in paths]
    if not frames:
        raise StudyError(f"no {what} shards given", file=what)
    merged = pd.concat(frames, ignore_index=True)
    keys = merged[key]
    dup = keys[keys.duplicated()].tolist()
    wanted = pd.Index(order)
    missing = wanted.difference(pd.Index(keys)).tolist()
    extra = pd.Index(keys).difference(wanted).tolist()
    if dup or missing or extra:
        raise StudyError(f"the {what} shards do not cover the table exactly once: {key}s {missing[:5]} in no shard, "
                         f"{dup[:5]} in two, {extra[:5]} unknown; expected the shards of this table (delete them "
                         "and re-run)", file=", ".join(map(str, paths))[:500])
    return merged.set_index(key).loc[list(order)].reset_index()
