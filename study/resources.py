"""Cluster resources each workflow rule declares (``mem_mb``, ``runtime``), from the cohort's size.

A cluster scheduler (SLURM, Kubernetes) needs every job's memory and time before it starts.
Each step's need is modelled as ``base + per_case * cases_in_the_job``: the base is the
Python process with its libraries imported, the per-case term the tables the step holds.
The coefficients are upper envelopes of the peak memory and CPU time that
``bench/bench_scale.py`` measures per step (it prints them at 1,000 and 10,000 cases),
with a safety factor of 2 on time; a cluster job that needs more is re-submitted by
Snakemake's ``--restart-times`` with ``attempt``-scaled resources (see :func:`rule_resources`).
Sharded steps (image probing, quality, prediction) count the cases of one shard.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class StepCost:
    """Memory (MB) and CPU time (s) of one job: ``base + per_case * n``."""

    mem_base_mb: float
    mem_per_case_kb: float
    time_base_s: float
    time_per_case_ms: float
    sharded: bool = False


#: per-step cost models (see the module docstring for where the numbers come from)
STEP_COSTS: dict[str, StepCost] = {
    "probe_images": StepCost(250, 2, 10, 3, sharded=True),
    # not in bench/bench_scale.py yet: agreement (2,000 replicates) and fusion of 1,000 cases x 3 annotators x
    # 20 lesions took 2 s CPU in memory (load 8.6 on 2 cores); 20 ms per case leaves room for reading the files
    "fuse_reference": StepCost(400, 16, 10, 20),
    "intake": StepCost(300, 12, 10, 0.5),
    "quality": StepCost(300, 2, 10, 20, sharded=True),
    "merge_quality": StepCost(250, 4, 5, 0.05),
    "eligibility": StepCost(250, 6, 5, 0.2),
    "reference": StepCost(300, 8, 5, 0.5),
    "readings": StepCost(250, 4, 5, 0.2),
    "predict": StepCost(1500, 4, 30, 500, sharded=True),
    "merge_detections": StepCost(400, 12, 10, 1),
    "grade_model": StepCost(300, 6, 5, 0.5),
    "evaluate_detection": StepCost(400, 20, 10, 10),
    "evaluate_counting": StepCost(300, 8, 10, 2),
    "evaluate_agreement": StepCost(300, 12, 10, 5),
    "evaluate_mrmc": StepCost(300, 6, 10, 2),
    "decide": StepCost(300, 8, 10, 1),
    "collect": StepCost(300, 8, 10, 1),
    "report": StepCost(500, 1, 60, 0.2),
}


def count_cases(manifest: str | os.PathLike, *, default: int = 0) -> int:
    """Number of data rows of a manifest CSV (``default`` when it does not exist yet, e.g. before synth)."""
    try:
        with open(manifest, newline="", encoding="utf-8") as f:
            return max(0, sum(1 for _ in csv.reader(f)) - 1)
    except FileNotFoundError:
        return default


def rule_resources(step: str, *, n_cases: int, n_shards: int = 1, attempt: int = 1,
                   gpu: bool = False) -> dict[str, int]:
    """``mem_mb`` and ``runtime`` (minutes) one job of ``step`` declares.

    Parameters
    ----------
    step : a key of :data:`STEP_COSTS` (the rule's name).
    n_cases : cases in the cohort.
    n_shards : shards a sharded step splits the cases into.
    attempt : Snakemake's attempt number (1, 2, ...): memory and time grow with it, so a
        job killed for running out of either is re-submitted with more.
    gpu : the job runs a model on a CUDA device: adds ``gpu: 1`` (SLURM ``--gpus``).

    Returns
    -------
    dict
        ``mem_mb`` (at least 512), ``runtime`` (minutes, at least 5) [, ``gpu``].
    """
    if step not in STEP_COSTS:
        raise KeyError(f"no cost model for step {step!r}; known: {sorted(STEP_COSTS)}")
    if n_cases < 0 or n_shards < 1 or attempt < 1:
        raise ValueError(f"need n_cases >= 0, n_shards >= 1, attempt >= 1; got {n_cases}, {n_shards}, {attempt}")
    c = STEP_COSTS[step]
    n = math.ceil(n_cases / n_shards) if c.sharded else n_cases
    mem = (c.mem_base_mb + c.mem_per_case_kb * n / 1024) * (1 + 0.5 * (attempt - 1))
    minutes = 2 * (c.time_base_s + c.time_per_case_ms * n / 1000) / 60 * attempt
    out = {"mem_mb": max(512, math.ceil(mem)), "runtime": max(5, math.ceil(minutes))}
    if gpu:
        out["gpu"] = 1
    return out
