"""Standalone lesion detection."""

from __future__ import annotations

from collections.abc import Mapping

from study.report import format as F
from study.report import selectors as S
from study.report.context.common import operating_threshold, unavailable
from study.report.format import Table, fmt, fmt_int, is_estimate


def detection_context(results: Mapping, figures: Mapping[str, str]) -> dict:
    dets = results.get("detection") or {}
    if not dets:
        return unavailable("No detection results: results.json lists no model under 'detection'.")
    order = S.class_order(results)
    models = []
    for m, det in sorted(dets.items()):
        if not isinstance(det, Mapping) or det.get("assessed") is False:
            models.append({"model": m, "available": False,
                           "reason": (det or {}).get("reason", "no detection metrics for this model")})
            continue
        t = Table(f"tab-det-{m}", f"Standalone detection per class, model {m} (IoU ≥ {fmt(det.get('iou_threshold'), 2)})",
                  ["Class", "Reference lesions", "Detections", "AP", "Precision", "Recall", "F1", "Max recall"])
        for c, v in S.detection_classes(det, order):
            t.add([c, fmt_int(v.get("n_gt")), fmt_int(v.get("n_det")), t.ci(F.with_ci(v, "ap")),
                   t.ci(v.get("precision")), t.ci(v.get("recall")), t.ci(v.get("f1")), t.ci(F.with_ci(v, "max_recall"))])
        if det.get("map") is not None:
            t.note(f"Mean AP over classes: {t.ci(F.with_ci(det, 'map'))}.")
        if det.get("ap_definition"):
            t.note(f"Definitions: {det['ap_definition']}.")
        ot = operating_threshold(results)
        if ot is not None:
            t.note(f"Precision, recall and F1 at the operating score threshold {ot}; AP and maximum recall over all "
                   f"scores (max recall: the recall reached with every detection kept).")
        coco = det.get("coco") or {}
        ct = None
        if coco:
            ct = Table(f"tab-coco-{m}", f"COCO summary metrics (all classes), model {m}", ["Metric", "Value"])
            for k, v in sorted(coco.items()):
                if is_estimate(v) or (isinstance(v, (int, float)) and not isinstance(v, bool)):
                    ct.add([k, ct.ci(v)])
            md = coco.get("max_dets")
            ct.note("COCO conventions: AP is averaged over IoU 0.50 to 0.95, AP50 and AP75 at IoU 0.50 and 0.75; "
                    "s, m, l = small, medium, large lesions; AR<n> = average recall with at most n detections per image"
                    + (f" (limits {', '.join(map(str, md))}; ARmax at the largest)" if isinstance(md, list) else "")
                    + f". Computed by {coco.get('backend', 'the COCO evaluator')} {coco.get('version', '')}".rstrip() + ".")
            if coco.get("note"):
                ct.note(str(coco["note"]) + ".")
        cls_coco = [(c, v.get("coco")) for c, v in S.detection_classes(det, order) if isinstance(v.get("coco"), Mapping)]
        if ct is not None and cls_coco:
            keys = [k for k in ("AP", "AP50", "AP75") if any(k in cc for _, cc in cls_coco)]
            cc_t = Table(f"tab-coco-class-{m}", f"COCO AP per class, model {m}", ["Class"] + keys)
            for c, cc in cls_coco:
                cc_t.add([c] + [cc_t.ci(cc.get(k)) for k in keys])
            cc_t.note("AP averaged over IoU 0.50 to 0.95; AP50 and AP75 at IoU 0.50 and 0.75 (COCO conventions).")
        else:
            cc_t = None
        pt = None
        pres = det.get("presence") or {}
        if pres:
            pt = Table(f"tab-presence-{m}", f"Presence of each lesion class per image, model {m}",
                       ["Class", "Accuracy", "Sensitivity", "Specificity", "F1"])
            for c in [c for c in order if c in pres] + sorted(set(pres) - set(order)):
                v = pres[c] or {}
                pt.add([c, pt.ci(v.get("accuracy")), pt.ci(v.get("sensitivity")), pt.ci(v.get("specificity")), pt.ci(v.get("f1"))])
        ft = None
        froc = det.get("froc") or {}
        if froc.get("points"):
            ft = Table(f"tab-froc-{m}", f"FROC: lesion sensitivity at pre-specified false positives per image, model {m}",
                       ["FP per image", "Sensitivity"])
            for p in froc["points"]:
                ft.add([fmt(p.get("fp_per_image"), 3), ft.ci(p.get("sensitivity"))])
            if froc.get("average") is not None:
                ft.note(f"Average sensitivity over these rates: {ft.ci(froc['average'])}.")
        seg = det.get("segmentation") or {}
        sg = None
        if seg:
            sg = Table(f"tab-seg-{m}", f"Polygon classes: overlap of matched lesions and per image, model {m}",
                       ["Class", "Level", "n", "IoU", "Dice"])
            for c in [c for c in order if c in seg] + sorted(set(seg) - set(order)):
                d = seg[c] or {}
                for lvl in ("instance", "image"):
                    x = d.get(lvl) or {}
                    if x:
                        sg.add([c, lvl, fmt_int(x.get("n")), sg.ci(x.get("iou")), sg.ci(x.get("dice"))])
                if d.get("definition"):
                    sg.note(f"{c}: {d['definition']}" + (f" (matched by {d['iou_type']})" if d.get("iou_type") else ""))
        models.append({"model": m, "available": True, "table": t.to_dict(), "coco": ct.to_dict() if ct and ct.rows else None,
                       "coco_classes": cc_t.to_dict() if cc_t else None,
                       "presence": pt.to_dict() if pt else None, "froc": ft.to_dict() if ft else None,
                       "segmentation": sg.to_dict() if sg else None,
                       "figures": [f for f in (f"pr__{m}", f"froc__{m}") if f in figures]})
    return {"available": True, "models": models}
