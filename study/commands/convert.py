"""``study convert FORMAT SRC --out DIR``: other annotation layouts -> the project's tables.

Formats: ``voc`` (a folder of Pascal VOC XML), ``circles`` (centre + radius JSON, e.g.
acne04v2), ``coco`` (COCO instances with other class names), ``acne04`` (the ACNE04 release
tree; ``--readers FILE...`` adds its dermatologists' result files). Writes
``DIR/manifest.csv``, ``DIR/annotations.json`` (+ ``reference.csv``, ``readings.csv`` for
acne04) and ``DIR/conversion.json``; nothing is written when any problem is found.
"""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser("convert", help="convert VOC / circles / COCO / ACNE04 annotations into study tables",
                              description=__doc__)
    p.add_argument("format", choices=["voc", "circles", "coco", "acne04"], help="source format")
    p.add_argument("src", help="source: VOC folder, circles/COCO JSON file, or the ACNE04 release root")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--protocol", help="protocol YAML whose classes the annotations map onto")
    p.add_argument("--classes", help="comma-separated class names (instead of --protocol)")
    p.add_argument("--class-map", action="append", default=[], metavar="NAME=CLASS",
                   help="rename a source class onto a protocol class (repeatable)")
    p.add_argument("--images", help="image folder, to check every annotated image exists")
    p.add_argument("--max-radius-fraction", type=float, default=0.1,
                   help="circles: largest plausible radius as a share of the image's shorter side (default 0.1)")
    p.add_argument("--drop-implausible", action="store_true",
                   help="every format: quarantine lesions that cannot be right (box or circle centre outside the image, "
                        "zero or negative size, non-finite numbers, implausible radius): leave them out, each listed "
                        "with its reason in conversion.json and counted in the summary, instead of failing")
    p.add_argument("--readers", nargs="+", default=[], metavar="FILE",
                   help="acne04: reader result files '<idx> <file> <A|B|C|D>' (reader id = file stem)")
    p.set_defaults(func=_run)


def _classes(args) -> tuple[list[str], list[str]]:
    from study.errors import StudyError
    from study.protocol import load_protocol

    if args.protocol:
        p = load_protocol(args.protocol).protocol
        return list(p.classes), list(p.polygon_classes)
    if args.classes:
        return [c.strip() for c in args.classes.split(",") if c.strip()], []
    raise StudyError("give --protocol P or --classes A,B,... (the classes annotations map onto)", file="options")


def _run(args) -> int:
    from study.convert import write_conversion
    from study.errors import Problem, StudyError

    class_map = {}
    bad = []
    for item in args.class_map:
        name, sep, cls = item.partition("=")
        if not sep or not name or not cls:
            bad.append(Problem("options", "--class-map", f"{item!r}; expected NAME=CLASS"))
        class_map[name] = cls
    if bad:
        raise StudyError(bad)
    if args.readers and args.format != "acne04":
        raise StudyError("--readers applies to the acne04 format only", file="options")
    if args.format == "acne04":
        from study.convert.acne04 import convert_acne04

        conv = convert_acne04(args.src, readers=args.readers, drop_implausible=args.drop_implausible)
    else:
        classes, polygons = _classes(args)
        if args.format == "voc":
            from study.convert.voc import convert_voc

            conv = convert_voc(args.src, classes=classes, class_map=class_map, images=args.images,
                               drop_implausible=args.drop_implausible)
        elif args.format == "circles":
            from study.convert.circles import convert_circles

            if not 0 < args.max_radius_fraction <= 1:
                raise StudyError(f"--max-radius-fraction {args.max_radius_fraction}; expected 0 < f <= 1", file="options")
            conv = convert_circles(args.src, classes=classes, class_map=class_map, images=args.images,
                                   max_radius_fraction=args.max_radius_fraction,
                                   drop_implausible=args.drop_implausible)
        else:
            from study.convert.coco import convert_coco

            conv = convert_coco(args.src, classes=classes, class_map=class_map, polygon_classes=polygons,
                                images=args.images, drop_implausible=args.drop_implausible)
    files = write_conversion(conv, args.out)
    info = conv.info
    n_quarantined = len(info.get("quarantined") or []) if args.drop_implausible else 0
    print(f"study convert {args.format}: {len(conv.manifest)} cases, {len(conv.coco.get('annotations', []))} boxes"
          + (f", {len(conv.readings)} readings" if conv.readings is not None else "")
          + (f", {n_quarantined} lesion(s) quarantined" if args.drop_implausible else ""))
    if n_quarantined:
        print(f"  quarantined: {len(info['quarantined'])} lesion(s) that cannot be right were left out "
              "(each listed with its reason in conversion.json)")
    for key in ("implausible", "grade_differs_from_hayashi_band", "box_count_differs_from_list_count",
                "images_not_in_lists", "cases_without_annotation_file", "annotation_files_without_case"):
        if info.get(key):
            print(f"  note: {len(info[key])} {key.replace('_', ' ')} (listed in conversion.json)")
    for role, path in files.items():
        print(f"  {role}: {path}")
    return 0
