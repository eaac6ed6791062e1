"""Grading schemes: lesion counts -> severity grade.

Two schemes are declared as data in a protocol (:class:`study.protocol.Grading`):

- ``count_bands`` -- Hayashi et al. (2008): the total count of ``count_classes`` (all count
  columns when not given) per half face falls in a band, e.g. <=5 mild, 6-20 moderate,
  21-50 severe, >50 very severe (ACNE04, Wu et al. 2019).
- ``type_rules`` -- the Chinese acne guideline (2019) and any custom ordered rules: rules are
  tried from the first (most severe) to the last; a rule matches when *any* of its classes
  reaches its minimum count; the first match gives the grade, otherwise ``default``
  (guideline: IV nodules or cysts, III pustules, II papules, I only comedones).

The model's grade comes from its detections at the operating threshold
(:func:`counts_from_detections` then :func:`grade_from_counts`); a reader's from the grade
they gave, or from their counts when they counted and gave no grade (:func:`reader_grades`).

References
----------
Hayashi N, Akamatsu H, Kawashima M et al. (2008). Establishment of grading criteria for
acne severity. J Dermatol 35:255-260.
Chinese Society of Dermatology, Acne Group (2019). Chinese guidelines for the management of
acne vulgaris (2019 revision). J Clin Dermatol.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from study.errors import Problem, StudyError
from study.protocol import Grading

COUNT_PREFIX = "count_"


def _count_columns_needed(grading: Grading, counts: pd.DataFrame) -> list[str]:
    if grading.scheme == "count_bands":
        if grading.count_classes:
            return [COUNT_PREFIX + c for c in grading.count_classes]
        return [c for c in counts.columns if c.startswith(COUNT_PREFIX)]
    return sorted({COUNT_PREFIX + c for r in grading.rules or [] for c in r.any_of})


def _validated_counts(counts: pd.DataFrame, cols: Sequence[str], *, source: str) -> pd.DataFrame:
    problems: list[Problem] = []
    if "case_id" not in counts.columns:
        problems.append(Problem(source, "case_id", "column 'case_id' is missing"))
    missing = [c for c in cols if c not in counts.columns]
    if missing:
        problems.append(Problem(source, ", ".join(missing),
                                f"count column(s) missing; the grading needs {list(cols)}"))
    if not cols and not missing:
        problems.append(Problem(source, "columns", "no count_<class> column to grade from"))
    if problems:
        raise StudyError(problems)
    dup = counts["case_id"][counts["case_id"].duplicated()]
    for cid in dup.unique()[:20]:
        problems.append(Problem(source, f"case_id {cid!r}", "case_id appears more than once"))
    out = {}
    for c in cols:
        raw = counts[c]
        num = pd.to_numeric(raw, errors="coerce")
        bad = num.isna() | (num < 0) | (num != np.floor(num))
        for pos in np.flatnonzero(bad.to_numpy())[:20]:
            problems.append(Problem(source, f"row {pos + 1} ({c})",
                                    f"count must be a non-negative integer, got {raw.iloc[pos]!r}"))
        if bad.sum() > 20:
            problems.append(Problem(source, c, f"... and {int(bad.sum()) - 20} more invalid counts"))
        out[c] = num.fillna(-1).astype(np.int64).to_numpy()
    if problems:
        raise StudyError(problems)
    return pd.DataFrame(out, index=pd.Index(counts["case_id"].to_numpy(), name="case_id"))


def grade_from_counts(counts: pd.DataFrame, grading: Grading, *, source: str = "counts") -> pd.Series:
    """Grade every case from its lesion counts.

    Parameters
    ----------
    counts : DataFrame
        ``case_id`` and ``count_<class>`` columns (non-negative integers).
    grading : study.protocol.Grading
        ``count_bands`` (Hayashi 2008) or ``type_rules`` (Chinese guideline 2019 / custom).
    source : str
        Name used in error messages.

    Returns
    -------
    Series
        Index ``case_id`` (input order), values = level labels, name ``grade``.

    Raises
    ------
    StudyError
        A needed count column is missing, a count is negative / not an integer / missing, or a
        case_id is duplicated (all problems listed).
    """
    cols = _count_columns_needed(grading, counts)
    c = _validated_counts(counts, cols, source=source)
    if grading.scheme == "count_bands":
        total = c[cols].to_numpy().sum(axis=1)
        maxes = [b.max for b in grading.bands[:-1]]  # type: ignore[index]
        # band i holds totals <= maxes[i] (and > maxes[i-1]); the last band is open
        idx = np.searchsorted(np.asarray(maxes, dtype=np.int64), total, side="left")
        labels = np.asarray([b.level for b in grading.bands], dtype=object)[idx]  # type: ignore[union-attr]
    else:
        labels = np.full(len(c), grading.default, dtype=object)
        decided = np.zeros(len(c), dtype=bool)
        for rule in grading.rules or []:
            hit = np.zeros(len(c), dtype=bool)
            for cls, minimum in rule.any_of.items():
                hit |= c[COUNT_PREFIX + cls].to_numpy() >= minimum
            new = hit & ~decided
            labels[new] = rule.level
            decided |= hit
    return pd.Series(labels, index=c.index, name="grade", dtype=object)


def counts_from_detections(detections: pd.DataFrame, *, case_ids: Iterable[Any], classes: Sequence[str],
                           threshold: float, source: str = "detections") -> pd.DataFrame:
    """Lesion counts per case from detections scoring at or above ``threshold``.

    Parameters
    ----------
    detections : DataFrame
        Columns ``case_id``, ``class``, ``score``.
    case_ids : iterable
        Every case to report; a case without detections gets zeros (never dropped).
    classes : sequence of str
        The protocol's classes; one ``count_<class>`` column each, in this order.
    threshold : float
        Operating score threshold (``score >= threshold`` counts).

    Returns
    -------
    DataFrame
        ``case_id`` + ``count_<class>`` (int64), one row per ``case_ids`` entry, same order.

    Raises
    ------
    StudyError
        Missing columns, a class not in ``classes``, a case not in ``case_ids``, or a missing
        score (all problems listed).
    """
    case_ids = list(case_ids)
    classes = list(classes)
    problems: list[Problem] = []
    need = ["case_id", "class", "score"]
    miss = [c for c in need if c not in detections.columns]
    if miss:
        raise StudyError(Problem(source, ", ".join(miss), f"column(s) missing; need {need}"))
    if len(set(case_ids)) != len(case_ids):
        raise StudyError(Problem(source, "case_ids", "case_ids given to count must be unique"))
    known_cases = pd.Index(case_ids)
    bad_cls = sorted(set(detections["class"].astype(str)) - set(classes))
    if bad_cls:
        problems.append(Problem(source, "class", f"unknown class(es) {bad_cls}; expected one of {classes}"))
    unknown = pd.Index(detections["case_id"].unique()).difference(known_cases)
    if len(unknown):
        problems.append(Problem(source, "case_id",
                                f"{len(unknown)} detection case_id(s) not among the cases, e.g. {list(unknown[:5])}"))
    score = pd.to_numeric(detections["score"], errors="coerce")
    if score.isna().any():
        pos = int(np.flatnonzero(score.isna().to_numpy())[0])
        problems.append(Problem(source, f"row {pos + 1} (score)",
                                f"{int(score.isna().sum())} missing or non-numeric score(s), first {detections['score'].iloc[pos]!r}"))
    if problems:
        raise StudyError(problems)
    kept = detections[score.to_numpy() >= threshold]
    ci = known_cases.get_indexer(kept["case_id"])
    cl = pd.Index(classes).get_indexer(kept["class"].astype(str))
    mat = np.zeros((len(case_ids), len(classes)), dtype=np.int64)
    np.add.at(mat, (ci, cl), 1)
    out = pd.DataFrame(mat, columns=[COUNT_PREFIX + c for c in classes])
    out.insert(0, "case_id", case_ids)
    return out


def counts_from_coco(gt: Mapping[str, Any], *, classes: Sequence[str], source: str = "ground truth") -> pd.DataFrame:
    """Lesion counts per case from COCO instances whose images carry ``case_id``.

    Every annotation counts once for its category (by category ``name``); images without
    annotations get zeros. ``gt["annotations"]`` is iterated once (it may be streamed:
    :func:`study.coco_stream.streamed_coco`).

    Returns
    -------
    DataFrame
        ``case_id`` + ``count_<class>`` for every class, one row per image (image order).

    Raises
    ------
    StudyError
        An image without ``case_id``, a duplicated case_id, an annotation whose category or
        image is unknown, or a category not among ``classes`` (all problems listed).
    """
    classes = list(classes)
    problems: list[Problem] = []
    images = gt.get("images") or []
    cats = {c.get("id"): c.get("name") for c in gt.get("categories") or []}
    for cid, name in cats.items():
        if name not in classes:
            problems.append(Problem(source, f"categories id {cid}", f"category {name!r} is not one of {classes}"))
    img_row: dict[Any, int] = {}
    case_ids: list[Any] = []
    seen: set = set()
    for i, im in enumerate(images):
        if "case_id" not in im:
            problems.append(Problem(source, f"images[{i}]", "image has no 'case_id'"))
            continue
        if im["case_id"] in seen:
            problems.append(Problem(source, f"images[{i}].case_id", f"case_id {im['case_id']!r} appears twice"))
        seen.add(im["case_id"])
        img_row[im.get("id")] = len(case_ids)
        case_ids.append(im["case_id"])
    mat = np.zeros((len(case_ids), len(classes)), dtype=np.int64)
    cls_idx = {c: k for k, c in enumerate(classes)}
    for j, a in enumerate(gt.get("annotations") or []):
        r = img_row.get(a.get("image_id"))
        name = cats.get(a.get("category_id"))
        if r is None:
            problems.append(Problem(source, f"annotations[{j}].image_id", f"unknown image id {a.get('image_id')!r}"))
        elif name is None:
            problems.append(Problem(source, f"annotations[{j}].category_id",
                                    f"unknown category id {a.get('category_id')!r}"))
        elif name in cls_idx:
            mat[r, cls_idx[name]] += 1
        if len(problems) > 50:
            break
    if problems:
        raise StudyError(problems)
    out = pd.DataFrame(mat, columns=[COUNT_PREFIX + c for c in classes])
    out.insert(0, "case_id", case_ids)
    return out


def normalise_grades(grades: pd.Series, grading: Grading, *, source: str = "grades",
                     allow_missing: bool = False) -> pd.Series:
    """Map letter aliases (e.g. ACNE04's A-D) onto level labels and check every grade.

    Grades are compared as text (``1`` and ``"1"`` are the same label). Missing grades stay
    missing when ``allow_missing``; otherwise they are errors, as is any grade outside the
    protocol's levels.

    Raises
    ------
    StudyError
        Listing every row whose grade is not a level (or alias).
    """
    levels = list(grading.levels)
    aliases = dict(grading.letter_aliases or {})
    out = grades.astype(object).copy()
    problems: list[Problem] = []
    for pos, v in enumerate(grades.tolist()):
        if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
            if not allow_missing:
                problems.append(Problem(source, f"row {pos + 1} (grade)", "grade is missing"))
            out.iloc[pos] = None
            continue
        s = str(v).strip()
        if s in levels:
            out.iloc[pos] = s
        elif s in aliases:
            out.iloc[pos] = aliases[s]
        else:
            extra = f" or aliases {sorted(aliases)}" if aliases else ""
            problems.append(Problem(source, f"row {pos + 1} (grade)", f"grade {v!r} is not one of levels {levels}{extra}"))
    if problems:
        raise StudyError(problems)
    return out


def reader_grades(readings: pd.DataFrame, grading: Grading, *, source: str = "readings") -> pd.Series:
    """A reader's grade per reading: the grade they gave, else the grade of their counts.

    Parameters
    ----------
    readings : DataFrame
        ``case_id``, ``grade`` (may be missing on some rows) and optionally ``count_<class>``.

    Returns
    -------
    Series
        Same index as ``readings``; level labels, ``None`` where the reader gave neither a
        grade nor complete counts (a missing reading).
    """
    if "grade" in readings.columns:
        g = normalise_grades(readings["grade"], grading, source=source, allow_missing=True)
    else:
        g = pd.Series([None] * len(readings), index=readings.index, dtype=object)
    need = _count_columns_needed(grading, readings)
    if not need or any(c not in readings.columns for c in need):
        return g
    missing_grade = g.isna().to_numpy()
    has_counts = readings[need].notna().all(axis=1).to_numpy()
    todo = missing_grade & has_counts
    if todo.any():
        sub = readings.loc[todo, need].copy()
        sub.insert(0, "case_id", np.arange(int(todo.sum())))  # positions: case_ids may repeat across readers
        g.loc[todo] = grade_from_counts(sub, grading, source=source).to_numpy()
    return g
