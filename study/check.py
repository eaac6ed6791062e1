"""``study check``: validate a study config and every input it names; collect *all* problems.

Order: the config (JSON schema, unique model ids), the protocol (pydantic; unknown keys,
NaN, cross-field rules), the model specs and their files (opened, hashed and loaded as the
run would, without inference), the manifest and its images, the criteria's and
subgroups' columns, the annotations, the reference and the readings. A later input is
still checked when an earlier one has problems, as long as what it is checked against
(the protocol's classes and levels, the manifest's cases) could be read.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from study.errors import Problem, StudyError


def _nan_paths(obj: Any, path: str = "") -> list[tuple[str, Any]]:
    """JSON paths of NaN / infinite numbers in a parsed YAML/JSON document."""
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _nan_paths(v, f"{path}.{k}" if path else str(k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _nan_paths(v, f"{path}[{i}]")
    elif isinstance(obj, float) and not math.isfinite(obj):
        out.append((path, obj))
    return out


class _Partial:
    """What can still be checked against when the protocol as a whole is invalid."""

    def __init__(self, classes, polygon_classes, grading, inclusion, subgroups):
        self.classes, self.polygon_classes, self.grading = classes, polygon_classes, grading
        self.inclusion, self.subgroups = inclusion, subgroups
        self.levels = list(grading.levels)


def _partial_protocol(data: Any) -> "_Partial | None":
    """Classes and grading of an invalid protocol, when those parts are valid themselves."""
    from pydantic import ValidationError

    from study.protocol import Criterion, Grading

    if not isinstance(data, dict):
        return None
    classes = data.get("classes")
    polys = data.get("polygon_classes") or []
    if not (isinstance(classes, list) and all(isinstance(c, str) for c in classes) and isinstance(polys, list)):
        return None
    try:
        grading = Grading.model_validate(data.get("grading"))
    except ValidationError:
        return None
    inclusion = []
    for c in data.get("inclusion") or []:
        try:
            inclusion.append(Criterion.model_validate(c))
        except ValidationError:
            pass
    subgroups = [s for s in data.get("subgroups") or [] if isinstance(s, str)]
    return _Partial(classes, [p for p in polys if p in classes], grading, inclusion, subgroups)


def check_model_files(spec: Any, *, where: str, config_path: str) -> list[Problem]:
    """Open, hash and load a model's files as ``study run`` would, without running inference.

    ``study.detectors.load_detector`` checks that every file exists, its sha256 against the
    spec, that checkpoints load with ``torch.load(weights_only=True)`` into the architecture
    (state-dict keys and shapes), that ONNX and TorchScript files parse, and that
    precomputed detections read; any failure is a problem here instead of a late failure.
    """
    from study.detectors import load_detector

    try:
        load_detector(spec)
    except StudyError as e:
        return [Problem(p.file or config_path, p.where or where, p.message) for p in e.problems]
    except Exception as e:  # a backend library's own error on a file it cannot use
        text = str(e).strip().splitlines()[0] if str(e).strip() else ""
        return [Problem(f"model {spec.id}", where, f"its files cannot be loaded by the {spec.backend} backend: "
                        f"{type(e).__name__}: {text}"[:2000])]
    return []


def _resolve(p: str, workdir: Path) -> Path:
    q = Path(p)
    return q if q.is_absolute() else workdir / q


def check_study(config_path: str | Path, *, workdir: str | Path | None = None) -> tuple[list[Problem], dict[str, Any]]:
    """Validate a study and all its inputs.

    Parameters
    ----------
    config_path : the study config YAML.
    workdir : folder relative paths in the config are resolved against (default: cwd).

    Returns
    -------
    (problems, summary)
        Every problem found (empty when the study is ready to run) and a summary
        ``{"cases", "decodable", "annotated_images", "annotations", "reference_rows",
        "readings", "readers", "models"}`` of what was read.
    """
    import yaml

    from study.cohort import validate_annotations, validate_manifest, validate_reference
    from study.config import load_config
    from study.protocol import parse_protocol
    from study.readings import validate_readings

    workdir = Path(workdir) if workdir is not None else Path.cwd()
    problems: list[Problem] = []
    summary: dict[str, Any] = {}
    try:
        config = load_config(config_path)
    except StudyError as e:
        return e.problems, summary

    # ---- protocol
    protocol = None
    ppath = _resolve(config["protocol"], workdir)
    try:
        raw = ppath.read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        problems.append(Problem(str(ppath), "", f"protocol file not found (config key 'protocol': "
                                f"{config['protocol']!r})"))
        raw = None
    if raw is not None:
        try:
            data = yaml.safe_load(raw.decode("utf-8"))
            if data is None:
                problems.append(Problem(str(ppath), "", "the protocol file is empty; expected a YAML mapping of "
                                        "the protocol's keys (see protocols/chinese-2019.yaml)"))
        except UnicodeDecodeError as e:
            problems.append(Problem(str(ppath), f"byte {e.start}", "protocol is not UTF-8 text"))
            data = None
        except yaml.YAMLError as e:
            problems.append(Problem(str(ppath), "", f"invalid YAML: {e}"))
            data = None
        if data is not None:
            nans = _nan_paths(data)
            for where, v in nans:
                problems.append(Problem(str(ppath), where, f"{v!r}: NaN or infinity where a number is required"))
            try:
                protocol = parse_protocol(data, source=str(ppath)) if not nans else None
            except StudyError as e:
                problems += e.problems
            if protocol is None:
                protocol = _partial_protocol(data)

    # ---- models
    try:
        from study.modelspec import load_model_spec
    except ImportError:
        load_model_spec = None
    specs: list[tuple[int, Any]] = []
    if load_model_spec is not None:
        for i, entry in enumerate(config.get("models", [])):
            try:
                spec = load_model_spec(entry, protocol_classes=protocol.classes if protocol else None,
                                       polygon_classes=protocol.polygon_classes if protocol else None,
                                       base_dir=workdir)
                specs.append((i, spec))
                problems += check_model_files(spec, where=f"models[{i}]", config_path=str(config_path))
            except StudyError as e:
                problems += [Problem(p.file or str(config_path), p.where or f"models[{i}]", p.message) for p in e.problems]
            except Exception as e:  # a model spec the validator could not even read
                problems.append(Problem(str(config_path), f"models[{i}]", f"model spec {entry.get('id')!r} could not "
                                        f"be validated: {type(e).__name__}: {e}"))
    summary["models"] = len(config.get("models", []))

    # ---- manifest and images
    cohort = config["cohort"]
    mpath = _resolve(cohort["manifest"], workdir)
    root = _resolve(cohort["image_root"], workdir)
    cases, mprob, iprob = validate_manifest(mpath, image_root=root)
    if cohort.get("synth") and not mpath.exists():
        mprob = [Problem(p.file, p.where, p.message + " (this cohort is built by `study synth` / `study demo` "
                         "on the first run)") if p.message == "file not found" else p for p in mprob]
    problems += mprob + iprob
    if cases is not None:
        summary["cases"] = int(len(cases))
        summary["decodable"] = int(cases["decodable"].sum()) if "decodable" in cases else None
        if protocol is not None:
            derived = {"_row", "image_path", "width", "height", "image_sha256", "image_bytes", "image_format",
                       "decodable", "image_error"}
            for i, c in enumerate(protocol.inclusion):
                if c.field not in cases.columns and c.required:
                    problems.append(Problem(str(ppath), f"inclusion[{i}].field", f"criterion {c.id!r} uses column "
                                            f"{c.field!r}, which the manifest {str(mpath)!r} lacks; its columns are "
                                            f"{[x for x in cases.columns if x not in derived]}; a required criterion needs its column"))
            for s in protocol.subgroups:
                if s not in cases.columns:
                    problems.append(Problem(str(ppath), "subgroups", f"subgroup column {s!r} is not in the manifest "
                                            f"{str(mpath)!r}"))
    case_table = cases.rename(columns={"_row": "row"}) if cases is not None else None
    if cases is not None and "patient_id" in cases:
        patients = sorted({str(p) for p in cases["patient_id"].dropna()})
        for i, spec in specs:
            try:
                spec.checked_card(patients)
            except StudyError as e:
                problems += [Problem(p.file or str(config_path), p.where or f"models[{i}]", p.message)
                             for p in e.problems]

    # ---- annotations, reference, readings
    if protocol is not None and case_table is not None:
        if cohort.get("annotations"):
            apath = _resolve(cohort["annotations"], workdir)
            doc, p = validate_annotations(apath, cases=case_table, classes=protocol.classes,
                                          polygon_classes=protocol.polygon_classes)
            problems += p
            if doc:
                summary["annotated_images"] = len(doc["images"])
                summary["annotations"] = len(doc["annotations"])
        if cohort.get("annotators"):
            from study.annotators.config import annotator_file_problems, annotators_from_config

            p, counts = annotator_file_problems(annotators_from_config(config), protocol=protocol, cases=case_table,
                                                resolve=lambda f: _resolve(f, workdir))
            problems += [x if x.file != "protocol" else Problem(str(ppath), x.where, x.message) for x in p]
            summary.update(counts)
        aliases = protocol.grading.letter_aliases or {}
        readings_df = None
        if cohort.get("reference"):
            df, p = validate_reference(_resolve(cohort["reference"], workdir), levels=protocol.levels, aliases=aliases,
                                       cases=case_table, classes=protocol.classes)
            problems += p
            if df is not None:
                summary["reference_rows"] = len(df)
        if cohort.get("readings"):
            df, p = validate_readings(_resolve(cohort["readings"], workdir), levels=protocol.levels, aliases=aliases,
                                      cases=case_table, classes=protocol.classes)
            problems += p
            readings_df = df
            if df is not None:
                summary["readings"] = len(df)
                summary["readers"] = int(df["reader_id"].nunique())
        plan = getattr(protocol, "analysis_plan", None)
        if plan is not None:
            from study.plan.model import check_plan_against_study

            groups: list[str] | None = [] if not cohort.get("readings") else None
            if readings_df is not None:
                groups = sorted({str(g) for g in readings_df["reader_group"].dropna()}) \
                    if "reader_group" in readings_df else []
            problems += check_plan_against_study(plan, file=str(ppath), models=[str(m.get("id")) for m in
                                                 config.get("models", [])], reader_groups=groups,
                                                 columns=list(case_table.columns))
    elif protocol is None or case_table is None:
        skipped = [r for r in ("annotations", "annotators", "reference", "readings") if cohort.get(r)]
        if skipped:
            problems.append(Problem(str(config_path), "cohort", f"{', '.join(skipped)} not checked: the "
                                    f"{'protocol' if protocol is None else 'manifest'} has problems (fix those first)"))
    return problems, summary
