"""k-of-m lesion fusion: several annotators' boxes -> the reference lesions.

Per image and class, boxes from different annotators are clustered greedily: all pairs of
boxes from different annotators with IoU >= ``iou_threshold`` are taken in decreasing IoU
(ties in annotator then box order); a pair joins the two clusters holding its boxes when no
annotator is in both (so a cluster holds at most one box per annotator; single linkage). A
cluster is a reference lesion when at least ``min_annotators`` annotators are in it; its box
is the coordinate-wise median or mean of the cluster's ``[x, y, w, h]``; for polygon classes
the cluster's medoid annotation (highest mean IoU to the others of the cluster; the first
annotator on a tie) is kept whole so its polygon and box agree. This is box fusion across
annotators as in weighted boxes fusion (Solovyev, Wang & Gabruseva 2021, Image Vis Comput
107:104117) with equal weights, one box per annotator per cluster and a k-of-m vote.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from study.protocol import LesionFusion


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """IoU of two ``[x, y, w, h]`` boxes (COCO convention, continuous coordinates)."""
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0.0, min(ax2, bx2) - max(a[0], b[0]))
    ih = max(0.0, min(ay2, by2) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return float(inter / union) if union > 0 else 0.0


@dataclass
class Cluster:
    """Boxes of several annotators taken as one lesion: ``members`` = (annotator index, annotation)."""

    members: list[tuple[int, dict[str, Any]]] = field(default_factory=list)

    @property
    def annotators(self) -> set[int]:
        return {a for a, _ in self.members}


def cluster_boxes(boxes: Sequence[Sequence[dict[str, Any]]], *, iou_threshold: float) -> list[Cluster]:
    """Cluster one image's boxes of one class; ``boxes[j]`` = annotator j's annotations (with ``bbox``).

    Returns every cluster (singletons included), ordered by its first member (annotator, box).
    """
    items = [(j, k, a) for j, anns in enumerate(boxes) for k, a in enumerate(anns)]
    owner = list(range(len(items)))  # cluster id of each item
    pairs = []
    for p in range(len(items)):
        for q in range(p + 1, len(items)):
            if items[p][0] == items[q][0]:
                continue
            iou = box_iou(items[p][2]["bbox"], items[q][2]["bbox"])
            if iou >= iou_threshold:
                pairs.append((-iou, p, q))
    pairs.sort()
    members: dict[int, list[int]] = {i: [i] for i in range(len(items))}
    for _, p, q in pairs:
        cp, cq = owner[p], owner[q]
        if cp == cq:
            continue
        if {items[i][0] for i in members[cp]} & {items[i][0] for i in members[cq]}:
            continue
        keep, gone = min(cp, cq), max(cp, cq)
        for i in members[gone]:
            owner[i] = keep
        members[keep] = sorted(members[keep] + members.pop(gone))
    return [Cluster([(items[i][0], items[i][2]) for i in ids]) for _, ids in sorted(members.items())]


def fused_annotation(cluster: Cluster, *, box: str, polygon: bool) -> dict[str, Any]:
    """The reference annotation of a kept cluster (see the module docstring)."""
    anns = [a for _, a in cluster.members]
    if polygon:
        if len(anns) == 1:
            return dict(anns[0])
        mean_iou = [np.mean([box_iou(a["bbox"], b["bbox"]) for j, b in enumerate(anns) if j != i])
                    for i, a in enumerate(anns)]
        return dict(anns[int(np.argmax(mean_iou))])
    arr = np.array([a["bbox"] for a in anns], dtype=float)
    b = np.median(arr, axis=0) if box == "median" else arr.mean(axis=0)
    return {"bbox": [float(v) for v in b], "category_id": anns[0]["category_id"]}


def fuse_image_lesions(per_annotator: Sequence[Sequence[dict[str, Any]]], *, fusion: LesionFusion,
                       polygon_classes: Sequence[str] = (), class_of: Any = None) -> list[dict[str, Any]]:
    """The reference lesions of one image from each annotator's annotations of it.

    Parameters
    ----------
    per_annotator : annotator j -> their annotations of the image (``bbox``, ``category_id``[, ``segmentation``]).
    fusion : the protocol's ``reference_standard.lesion_fusion``.
    polygon_classes, class_of : classes kept as the medoid polygon, and ``category_id -> class name``.

    Returns
    -------
    list of dict
        ``bbox``, ``category_id`` [, ``segmentation``] and ``n_annotators`` (how many marked it),
        by category then first member.
    """
    class_of = class_of or {}
    cats = sorted({a["category_id"] for anns in per_annotator for a in anns})
    out = []
    for cat in cats:
        by_annotator = [[a for a in anns if a["category_id"] == cat] for anns in per_annotator]
        for c in cluster_boxes(by_annotator, iou_threshold=fusion.iou_threshold):
            if len(c.annotators) >= fusion.min_annotators:
                ann = fused_annotation(c, box=fusion.box, polygon=class_of.get(cat) in set(polygon_classes))
                ann = {k: v for k, v in ann.items() if k in ("bbox", "category_id", "segmentation", "area")}
                ann["n_annotators"] = len(c.annotators)
                out.append(ann)
    return out


def matched_pairs(a: Sequence[dict[str, Any]], b: Sequence[dict[str, Any]], *, iou_threshold: float = 0.5) -> int:
    """Lesions of ``a`` matched one-to-one to lesions of ``b`` (same class, IoU >= threshold).

    Greedy matching in decreasing IoU (as COCO's per-image matching with equal scores).
    """
    pairs = sorted(((-box_iou(x["bbox"], y["bbox"]), i, j) for i, x in enumerate(a) for j, y in enumerate(b)
                    if x["category_id"] == y["category_id"]))
    used_a: set[int] = set()
    used_b: set[int] = set()
    for neg, i, j in pairs:
        if -neg < iou_threshold:
            break
        if i in used_a or j in used_b:
            continue
        used_a.add(i)
        used_b.add(j)
    return len(used_a)
