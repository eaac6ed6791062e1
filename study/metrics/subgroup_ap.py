"""Detection AP of a subgroup of images (e.g. a Fitzpatrick skin type), its patient bootstrap, and differences.

The study's AP (``study.metrics.average_precision``: COCO's 101-point interpolated AP at the
protocol's IoU threshold, class-aware greedy matching) of a set of images follows from the
per-detection flags of the whole evaluation (:func:`study.metrics.detection.detection_flags`),
because matching is per image: a subgroup keeps its images' detections and lesions. The
subgroup's mAP is, as the study's ``map``, the mean of the per-class AP over the classes with
reference lesions in the subgroup.

- :func:`subgroup_map`: the point estimate;
- :class:`SubgroupAP`: the same with a percentile patient bootstrap (Davison & Hinkley 1997,
  section 3.8: resample the patients of the subgroup with replacement; a patient drawn ``m``
  times counts ``m`` times, so each replicate's AP is the AP of the detections weighted by
  their patient's draw count, exactly the AP of the resampled list when scores are not tied);
- :func:`difference`: the difference of two subgroups' mAP, each resampled independently
  within its own patients, with its percentile interval and a two-sided bootstrap p-value.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from study.estimate import Estimate
from study.metrics.average_precision import _score_order, average_precision, weighted_ap_rows
from study.metrics.bootstrap import ReplicateWeights, bootstrap_estimate, bootstrap_method_name
from study.metrics.detection import DetectionFlags

__all__ = ["SubgroupAP", "class_aps", "difference", "subgroup_map"]


def class_aps(flags: DetectionFlags, images: np.ndarray) -> dict[str, float | None]:
    """The study's AP of each class on the images where ``images`` (bool, per ``flags.image_ids``) is true.

    ``None`` for a class without reference lesions in those images.
    """
    images = np.asarray(images, bool)
    keep = images[flags.dt_img]
    n_gt = flags.lesions[images].sum(axis=0)
    out: dict[str, float | None] = {}
    for c, name in enumerate(flags.classes):
        d = keep & (flags.dt_cls == c)
        if n_gt[c] <= 0:
            out[name] = None
            continue
        out[name] = float(average_precision(flags.dt_score[d], flags.dt_tp[d], flags.dt_fp[d], int(n_gt[c]),
                                            tie_order=flags.dt_tie[d]).ap)
    return out


def subgroup_map(flags: DetectionFlags, images: np.ndarray) -> float | None:
    """mAP of a subgroup: mean of :func:`class_aps` over the classes with reference lesions (``None`` if none)."""
    v = [x for x in class_aps(flags, images).values() if x is not None]
    return float(np.mean(v)) if v else None


#: values per (replicates x detections) work array of the bootstrap: 2**21 doubles = 16 MB, so the
#: handful alive at once stay well under 2 GB (and in cache) whatever the cohort's size
_CELLS = 1 << 21


@dataclass(frozen=True)
class _ClassList:
    """One class's detections of the subgroup, sorted as the AP sorts them."""

    tp: np.ndarray       # float (n,)
    fp: np.ndarray       # float (n,)
    patient: np.ndarray  # int (n,) patient index within the subgroup
    lesions: np.ndarray  # float (P,) reference lesions of the class per patient


class SubgroupAP:
    """The mAP of a subgroup of images and its patient-bootstrap replicates.

    Parameters
    ----------
    flags : DetectionFlags
        The flags of the whole evaluation.
    images : bool array (n_images,)
        The subgroup (per ``flags.image_ids``).
    patient : array (n_images,)
        Patient label of every image (each image its own patient when unknown).
    """

    def __init__(self, flags: DetectionFlags, images: np.ndarray, patient: np.ndarray) -> None:
        images = np.asarray(images, bool)
        if images.shape != (len(flags.image_ids),) or len(patient) != len(flags.image_ids):
            raise ValueError(f"need one subgroup flag and one patient per image ({len(flags.image_ids)}); got "
                             f"{images.shape} and {len(patient)}")
        self.flags = flags
        self.images = images
        labels = np.asarray([str(x) for x in np.asarray(patient, dtype=object)[images]])
        uniq, pat_of_sub = np.unique(labels, return_inverse=True)
        self.n_patients = len(uniq)
        self.n_images = int(images.sum())
        pat_of_image = np.full(len(images), -1, np.int64)
        pat_of_image[images] = pat_of_sub
        self.n_lesions = int(flags.lesions[images].sum())
        keep = images[flags.dt_img]
        self.n_detections = int(keep.sum())
        self.ap_by_class = class_aps(flags, images)
        self.point = subgroup_map(flags, images)
        self._lists: list[_ClassList] = []
        for c, name in enumerate(flags.classes):
            if self.ap_by_class[name] is None:
                continue
            d = np.flatnonzero(keep & (flags.dt_cls == c))
            o = d[_score_order(flags.dt_score[d], flags.dt_tp[d], flags.dt_fp[d], flags.dt_tie[d])]
            self._lists.append(_ClassList(
                tp=flags.dt_tp[o].astype(float), fp=flags.dt_fp[o].astype(float),
                patient=pat_of_image[flags.dt_img[o]],
                lesions=np.bincount(pat_of_sub, weights=flags.lesions[images, c], minlength=self.n_patients)))

    def replicates(self, *, n_replicates: int, seed: int | Iterable[int]) -> np.ndarray:
        """The mAP of ``n_replicates`` patient-bootstrap samples (NaN where no class has a lesion).

        A replicate's mAP averages the per-class AP over the classes that have reference
        lesions in that replicate. The draws are :class:`study.metrics.bootstrap.ReplicateWeights`
        from ``numpy.random.default_rng(seed)``.
        """
        if self.n_patients == 0 or n_replicates <= 0:
            return np.zeros(0)
        rng = np.random.default_rng(seed if isinstance(seed, int) else list(seed))
        out = []
        for w in ReplicateWeights(self.n_patients, n_replicates=n_replicates, rng=rng):
            w = w.astype(float)
            aps = np.vstack([self._class_rows(cl, w) for cl in self._lists]) if self._lists \
                else np.full((1, len(w)), np.nan)
            defined = np.isfinite(aps)
            k = defined.sum(axis=0)
            with np.errstate(invalid="ignore"):
                out.append(np.where(k > 0, np.where(defined, aps, 0.0).sum(axis=0) / np.maximum(k, 1), np.nan))
        return np.concatenate(out)

    @staticmethod
    def _class_rows(cl: _ClassList, w: np.ndarray) -> np.ndarray:
        """One class's AP under every row of patient weights ``w``, a few rows at a time so that the
        (rows x detections) work arrays stay near ``_CELLS`` values (rows are independent: same numbers)."""
        rows = max(1, _CELLS // max(len(cl.tp), 1))
        return np.concatenate([weighted_ap_rows(cl.tp, cl.fp, w[i:i + rows][:, cl.patient], w[i:i + rows] @ cl.lesions)
                               for i in range(0, len(w), rows)])

    def estimate(self, replicates: np.ndarray, *, n_replicates: int, confidence: float) -> Estimate:
        """The mAP with its percentile interval from :meth:`replicates`."""
        if self.point is None:
            return Estimate(None, None, None, bootstrap_method_name(n_replicates, confidence),
                            reason="no reference lesion in the group")
        if n_replicates <= 0:
            return Estimate(self.point, None, None, "no bootstrap (0 replicates)", reason="no bootstrap requested")
        return bootstrap_estimate(self.point, replicates, n_replicates=n_replicates, confidence=confidence)


def difference(a: SubgroupAP, b: SubgroupAP, reps_a: np.ndarray, reps_b: np.ndarray, *, n_replicates: int,
               confidence: float) -> tuple[Estimate, float | None]:
    """mAP of ``a`` minus mAP of ``b``: percentile interval of the replicate differences and a two-sided p-value.

    The two groups are resampled independently (each within its own patients), so replicate
    ``i`` of the difference is ``reps_a[i] - reps_b[i]``. The p-value inverts the percentile
    interval: twice the smaller share of replicate differences at or beyond 0 on either side,
    ``p = min(1, 2 min(1 + #{d* <= 0}, 1 + #{d* >= 0}) / (B + 1))`` over the ``B`` defined
    replicates (Davison & Hinkley 1997, section 4.4 and eq. 4.11; Efron & Tibshirani 1993,
    section 15.4).
    """
    method = (bootstrap_method_name(n_replicates, confidence) + ", each group resampled independently within its "
              "own patients")
    if a.point is None or b.point is None:
        return Estimate(None, None, None, method, reason="a group has no reference lesion"), None
    d = a.point - b.point
    if n_replicates <= 0:
        return Estimate(d, None, None, method, reason="no bootstrap requested"), None
    diffs = np.asarray(reps_a, float) - np.asarray(reps_b, float)
    est = bootstrap_estimate(d, diffs, n_replicates=n_replicates, confidence=confidence)
    est = est.model_copy(update={"method": method})
    ok = diffs[np.isfinite(diffs)]
    if not ok.size:
        return est, None
    p = min(1.0, 2 * min(1 + int((ok <= 0).sum()), 1 + int((ok >= 0).sum())) / (ok.size + 1))
    return est, float(p)
