"""The body of every workflow rule, one function per step, on explicit files.

Each function reads its inputs, calls the module that does the work, and writes its
outputs atomically (``study.io``), so a failed step leaves nothing that looks finished.
``study step NAME key=value ...`` calls them; the Snakefile's rules call that.
Arguments arrive as strings (paths, comma-separated lists, JSON); ``None`` = not given.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import pandas as pd

from study.io import read_json, write_json, write_parquet
from study.protocol import load_protocol
from study.rule_params import protocol_for_step


def _split(value: str | None) -> list[str]:
    return [v for v in (value or "").split(",") if v]


def _included_ids(eligibility: str) -> list[str]:
    el = pd.read_parquet(eligibility)
    return el.loc[el["included"], "case_id"].astype(str).tolist()


def _patients(cases: str) -> dict[str, str]:
    c = pd.read_parquet(cases, columns=["case_id", "patient_id"])
    return dict(zip(c["case_id"].astype(str), c["patient_id"].astype(str)))


# ----------------------------------------------------------------------------- cohort
def probe_images(*, manifest, image_root, shard, n_shards, out):
    """One shard of the manifest's rows: read each image once (sha256, size, full decode check).

    The shard is a contiguous block of the manifest's rows (:func:`study.shards.shard_rows`);
    structural problems of the manifest are left to :func:`intake`, which reports them all.
    """
    from study.cohort.manifest import probe_manifest_images, validate_manifest
    from study.errors import raise_if
    from study.shards import shard_rows

    df, problems, _ = validate_manifest(manifest, image_root=image_root, probe=False)
    if df is None:
        raise_if(problems)
    assert df is not None
    part = shard_rows(df, shard=int(shard), n_shards=int(n_shards))
    write_parquet(out, probe_manifest_images(part).reset_index(drop=True))


def fuse_reference(*, protocol, annotators, manifest, image_root, out_annotations, out_reference, out_disagreements,
                   out_record):
    """Several annotators' files -> the fused reference (COCO, grades), the disagreements and the record.

    ``annotators``: the config's ``cohort.annotators`` as JSON (each annotator's files are the
    rule's inputs). See :func:`study.annotators.build.write_reference`.
    """
    from study.annotators.build import write_reference
    from study.annotators.config import annotators_from_config

    p = protocol_for_step(protocol, "fuse_reference")
    entries = annotators_from_config({"cohort": {"annotators": json.loads(annotators)}})
    write_reference(entries, manifest=manifest, image_root=image_root, protocol=p, source=str(protocol),
                    out_annotations=out_annotations, out_reference=out_reference,
                    out_disagreements=out_disagreements, out_record=out_record)


def intake(*, protocol, manifest, image_root, out_cases, out_ground_truth, annotations=None, probes=None):
    """Manifest (+ annotations) -> ``cases.parquet`` and normalised ``ground_truth.json``.

    ``probes``: the shards of :func:`probe_images` (comma-separated); without them every
    image is probed here, in one process.
    """
    from study import cohort

    p = protocol_for_step(protocol, "intake")
    probed = pd.concat([pd.read_parquet(f) for f in _split(probes)], ignore_index=True) if probes else None
    cases = cohort.load_manifest(manifest, image_root=image_root, probes=probed)
    if annotations:
        gt = cohort.load_annotations(annotations, cases=cases, classes=p.classes,
                                     polygon_classes=p.polygon_classes)
    else:
        gt = cohort.empty_ground_truth(cases, classes=p.classes)
    write_parquet(out_cases, cases)
    write_json(out_ground_truth, gt)


_QUALITY_INPUT = ["case_id", "image_path", "width", "height", "decodable"]


def quality(*, protocol, cases, out, workers="2", shard=None, n_shards=None):
    """Image-quality features and pass/fail per case -> ``quality.parquet`` (or one shard of it).

    With ``shard``/``n_shards``, only that contiguous block of the cases' rows is assessed
    (:func:`study.shards.shard_rows`); :func:`merge_quality` joins the shards.
    """
    from study.quality import assess_cases
    from study.shards import shard_rows

    p = protocol_for_step(protocol, "quality")
    table = pd.read_parquet(cases, columns=_QUALITY_INPUT)
    if shard is not None:
        table = shard_rows(table, shard=int(shard), n_shards=int(n_shards or 1))
    write_parquet(out, assess_cases(table, thresholds=p.quality, workers=int(workers)))


def merge_quality(*, cases, shards, out):
    """The shards of :func:`quality` -> ``quality.parquet``, in the cases' order (each case exactly once)."""
    from study.shards import merge_shard_tables

    order = pd.read_parquet(cases, columns=["case_id"])["case_id"].astype(str).tolist()
    write_parquet(out, merge_shard_tables(_split(shards), key="case_id", order=order, what="quality"))


def eligibility(*, protocol, cases, quality, out_table, out_flow, models=None):
    """Inclusion criteria + quality gate -> ``eligibility.parquet`` and the cases' part of the flow.

    The readers' part of the flow is added by :func:`readings` (see
    :func:`study.eligibility.add_readers`): eligibility does not depend on the readings, so a
    changed reading does not re-run it, nor prediction after it.
    """
    from study import eligibility as el

    p = protocol_for_step(protocol, "eligibility")
    cases_df = pd.read_parquet(cases)
    quality_df = pd.read_parquet(quality)
    table, flow = el.decide_eligibility(cases_df, quality_df, criteria=p.inclusion, models=_split(models))
    write_parquet(out_table, table)
    write_json(out_flow, flow)


def reference(*, protocol, cases, ground_truth, out, reference=None):
    """Reference grades: from reference.csv when given, else graded from the ground truth counts."""
    from study import cohort, grading

    p = protocol_for_step(protocol, "reference")
    cases_df = pd.read_parquet(cases)
    from study.coco_stream import streamed_coco

    # counts need only each annotation's image and category: streamed, never the whole file in memory
    counts = grading.counts_from_coco(streamed_coco(ground_truth, image_keys=("id", "case_id"),
                                                    annotation_keys=("image_id", "category_id")), classes=p.classes)
    if reference:
        ref = cohort.load_reference(reference, levels=p.levels, aliases=p.grading.letter_aliases or {},
                                    cases=cases_df)
        given = ref.set_index("case_id")
        ref = ref[["case_id", "grade"]].merge(counts, on="case_id", how="left")
        for col in [c for c in counts.columns if c.startswith("count_") and c in given.columns]:
            # annotated lesions count where the case is annotated; else the counts the file gives
            ref[col] = ref[col].fillna(ref["case_id"].map(given[col]))
        ref["grade_source"] = "reference file"
    else:
        graded = grading.grade_from_counts(counts, p.grading)
        ref = counts.assign(grade=counts["case_id"].map(graded))
        ref["grade_source"] = f"graded from annotated lesion counts ({p.grading.scheme})"
    write_parquet(out, ref)


def readings(*, protocol, cases, out, readings=None, out_readers=None, eligibility=None, cases_flow=None,
             out_flow=None):
    """Readers' grades, validated against the protocol's levels -> ``readings.parquet``; and,
    with ``out_flow`` (the workflow), ``flow.json``: eligibility's flow of cases
    (``cases_flow``) with the readers' part added for the included cases of ``eligibility``.

    ``readings`` is a CSV or a reading database (``study readers init``), exported on the fly.
    Every reading is kept (aided and not-assessable ones too); the analyses select theirs
    with :func:`study.readings.analysable_readings`, and so does the flow. ``out_readers``
    (``readers.json``): the typed reader table (:class:`study.results.readers.ReadersBlock`),
    with experience and specialty when the readings come from a reading database.
    """
    from study.eligibility import add_readers

    p = protocol_for_step(protocol, "readings")
    if readings:
        from study.readings import load_readings

        df = load_readings(readings, levels=p.levels, aliases=p.grading.letter_aliases or {},
                           cases=pd.read_parquet(cases, columns=["case_id"]))
    else:
        df = pd.DataFrame({"reader_id": pd.Series(dtype=str), "reader_group": pd.Series(dtype=str),
                           "case_id": pd.Series(dtype=str), "grade": pd.Series(dtype=str)})
    if out_readers:
        from study.readers.characteristics import readers_block
        from study.readings import is_reading_database

        chars = None
        if readings and is_reading_database(readings):
            from study.readers.export import reader_characteristics

            chars = reader_characteristics(readings)
        write_json(out_readers, readers_block(df, characteristics=chars))
    flow = None
    if out_flow:
        from study.collect import read_block
        from study.errors import StudyError
        from study.readings import analysable_readings
        from study.results.flow import Flow

        if not (eligibility and cases_flow):
            raise StudyError("out_flow needs eligibility= (eligibility.parquet) and cases_flow= (flow-cases.json)",
                             file="study step readings")
        # the flow counts the readings the analyses use (unaided, assessable): see analysable_readings
        flow = add_readers(read_block(Path(cases_flow), Flow), analysable_readings(df) if readings else None,
                           included=_included_ids(eligibility), all_readings=df if readings else None)
    write_parquet(out, df)
    if out_flow:
        write_json(out_flow, flow)


# ----------------------------------------------------------------------------- models
def predict(*, protocol, cases, eligibility, quality, model, shard, n_shards, out, batch_size=None, threads="1"):
    """One shard of one model's predictions on the included cases."""
    from study.inference import predict_shard
    from study.modelspec import load_model_spec

    p = protocol_for_step(protocol, "predict")
    spec = load_model_spec(json.loads(model), protocol_classes=p.classes)
    cases_df = pd.read_parquet(cases)
    spec.checked_card(_cohort_patients(cases_df))  # training patients in the cohort: stop before predicting
    cases_df = cases_df[cases_df["case_id"].astype(str).isin(set(_included_ids(eligibility)))]
    predict_shard(spec, cases_df, shard=int(shard), n_shards=int(n_shards), out=out,
                  batch_size=int(batch_size) if batch_size else None,
                  face_boxes=pd.read_parquet(quality), threads=int(threads))


def _cohort_patients(cases_df: pd.DataFrame) -> list[str]:
    """Every patient id of the cohort (all cases, included or not; a case without one: its case id)."""
    if "patient_id" not in cases_df:
        return sorted(set(cases_df["case_id"].astype(str)))
    pid = cases_df["patient_id"].astype("string").fillna(cases_df["case_id"].astype("string"))
    return sorted(set(pid.astype(str)))


def merge(*, shards, model, ground_truth, out_table, out_coco, out_meta, cases=None):
    """Shards -> one detections table, a COCO results JSON and the model's meta (weights sha256, model card).

    ``cases`` (intake's cases table) is what the model card's training patients are checked against.
    """
    from study.inference import merge_shards
    from study.modelspec import load_model_spec

    spec = load_model_spec(json.loads(model))
    card = spec.checked_card(_cohort_patients(pd.read_parquet(cases))) if cases else None
    from study.coco_stream import streamed_coco

    gt = streamed_coco(ground_truth, image_keys=("id", "case_id"), annotation_keys=())  # images and categories only
    merge_shards(_split(shards), spec=spec, ground_truth=gt, out_table=out_table,
                 out_coco_json=out_coco, out_meta=out_meta, card=card)


def grade(*, protocol, detections, eligibility, out):
    """The model's grade per included case from its detections at the operating threshold."""
    from study import grading

    p = protocol_for_step(protocol, "grade")
    det = pd.read_parquet(detections)
    counts = grading.counts_from_detections(det, case_ids=_included_ids(eligibility), classes=p.classes,
                                            threshold=p.detection.operating_threshold)
    graded = grading.grade_from_counts(counts, p.grading)
    write_parquet(out, counts.assign(grade=counts["case_id"].map(graded)))


# ----------------------------------------------------------------------------- evaluate
def evaluate_detection(*, protocol, ground_truth, detections, cases, eligibility, out, flags=None):
    """The detection block (``out``) and, when ``flags`` is given, the per-detection flags of the same
    matching (``study.metrics.flags_file``), which the collect step's detection-by-skin-type reads."""
    from study.metrics.detection import detection_flags
    from study.metrics.detection import evaluate_detection as run
    from study.metrics.flags_file import write_flags
    from study.options import DetectionOptions

    from study.metrics.coco_columns import load_coco_columns

    p = load_protocol(protocol).protocol
    arguments = DetectionOptions.from_protocol(p).arguments()
    # the native COCO backend needs only the files' columns: streamed, never held as a million dicts
    # (falls back to reading them whole when they are irregular, so the validators name the problems)
    loaded = load_coco_columns(ground_truth, detections) if arguments.get("coco_backend", "native") == "native" else None
    gt, dets, raw = loaded if loaded is not None else (read_json(ground_truth), read_json(detections), None)
    included = set(_included_ids(eligibility))
    image_ids = [im["id"] for im in gt["images"] if str(im["case_id"]) in included]
    patient_of_case = _patients(cases)
    patient_of = {im["id"]: patient_of_case[str(im["case_id"])] for im in gt["images"]}
    result = run(gt, dets, **arguments, patient_of=patient_of, image_ids=image_ids, raw=raw)
    if flags is not None:
        # the inputs were validated by the run above (or are its checked columns): not again
        write_flags(flags, detection_flags(gt, dets, image_ids=image_ids, raw=raw, validate=False, **arguments))
    write_json(out, result)


def evaluate_counting(*, protocol, reference, detections, cases, eligibility, out):
    from study.metrics.counting import evaluate_counting as run
    from study.options import CountingOptions

    options = CountingOptions.from_protocol(load_protocol(protocol).protocol)
    included = set(_included_ids(eligibility))
    ref = pd.read_parquet(reference)
    ref = ref[ref["case_id"].astype(str).isin(included)]
    det = pd.read_parquet(detections)
    true_counts = ref[["case_id"] + [f"count_{c}" for c in options.classes]]
    result = run(true_counts, det, options=options, severity=ref.set_index("case_id")["grade"],
                 patient_of=_patients(cases))
    write_json(out, result)


def _all_ratings(grades: list[str], readings_path: str, included: set[str]) -> pd.DataFrame:
    frames = []
    for g in grades:
        df = pd.read_parquet(g)
        frames.append(pd.DataFrame({"rater_id": Path(g).stem, "case_id": df["case_id"].astype(str),
                                    "grade": df["grade"], "rater_kind": "model", "reader_group": None}))
    from study.readings import analysable_readings

    # Agreement and the per-model OR/DBM analysis use unaided, assessable readings only
    # (readings without a modality are unaided); aided readings enter mrmc.ustat only.
    rd = analysable_readings(pd.read_parquet(readings_path))
    if len(rd):
        frames.append(pd.DataFrame({"rater_id": rd["reader_id"].astype(str), "case_id": rd["case_id"].astype(str),
                                    "grade": rd["grade"], "rater_kind": "reader",
                                    "reader_group": rd.get("reader_group")}))
    out = pd.concat(frames, ignore_index=True)
    return out[out["case_id"].isin(included)].reset_index(drop=True)


def evaluate_agreement(*, protocol, reference, readings, grades, cases, eligibility, out):
    from study.metrics.agreement import evaluate_agreement as run
    from study.options import AgreementOptions, override

    p = load_protocol(protocol).protocol
    included = set(_included_ids(eligibility))
    ref = pd.read_parquet(reference)
    ref = ref[ref["case_id"].astype(str).isin(included)][["case_id", "grade"]]
    ratings = _all_ratings(_split(grades), readings, included)
    cases_df = pd.read_parquet(cases)
    present = tuple(c for c in p.subgroups if c in cases_df.columns)  # subgroup columns the cohort has
    options = override(AgreementOptions.from_protocol(p), source="protocol", subgroups=present)
    result = run(ref, ratings, options=options, patient_of=_patients(cases),
                 covariates=cases_df[["case_id", *present]])
    write_json(out, result)


def evaluate_mrmc(*, protocol, reference, readings, grades, eligibility, out, cases=None):
    """Each model against the readers on the protocol's binary endpoint -> ``mrmc.json`` (:data:`MRMCStudyBlock`).

    Two analyses: per model, OR/DBM on the largest fully crossed block of unaided grades (``models``);
    and the U-statistic analyses on every included case with readings (``ustat``: aided versus
    unaided readers, each model versus the unaided readers; patients resampled with ``cases``).
    """
    from study.errors import StudyError
    from study.metrics import mrmc
    from study.options import MRMCOptions
    from study.results.base import NotAssessed
    from study.results.mrmc import MRMCBlock, MRMCModelResult

    opts = MRMCOptions.from_protocol(load_protocol(protocol).protocol)
    included = set(_included_ids(eligibility))
    model_ids = [Path(g).stem for g in _split(grades)]
    if opts.positive_from is None or opts.levels is None:
        write_json(out, NotAssessed(reason="the protocol names no binary endpoint (statistics.mrmc_positive_from)"))
        return
    ref = pd.read_parquet(reference)
    ref = ref[ref["case_id"].astype(str).isin(included)][["case_id", "grade"]]
    ratings = _all_ratings(_split(grades), readings, included)
    n_readers = ratings.loc[ratings["rater_kind"] == "reader", "rater_id"].nunique()
    if n_readers < 2:
        write_json(out, NotAssessed(reason=f"an MRMC analysis needs at least two readers; the study has {n_readers}"))
        return
    results_by_model: dict[str, MRMCModelResult | NotAssessed] = {}
    for model_id in model_ids:
        sub = ratings[(ratings["rater_kind"] == "reader") | (ratings["rater_id"] == model_id)]
        try:
            table, design = mrmc.ratings_from_grades(ref, sub[["rater_id", "case_id", "grade"]], levels=opts.levels,
                                                     positive_from=opts.positive_from, keep=[model_id])
            analysis = mrmc.analyze_mrmc(table, options=opts, ai_reader=model_id)
        except StudyError as e:  # e.g. the crossed block holds cases of one truth only
            results_by_model[model_id] = NotAssessed(reason="; ".join(p_.message for p_ in e.problems))
            continue
        roc = {str(rid): mrmc.empirical_roc(g["truth"].to_numpy(), g["rating"].to_numpy())
               for rid, g in table.groupby("reader_id")}
        results_by_model[model_id] = MRMCModelResult(design=design, analysis=analysis, roc=roc)
    from study.metrics.mrmc.study_ustat import study_ustat

    rd = pd.read_parquet(readings)
    model_grades = {Path(g).stem: pd.read_parquet(g)[["case_id", "grade"]] for g in _split(grades)}
    ustat = study_ustat(ref, rd, model_grades, levels=opts.levels, positive_from=opts.positive_from,
                        patient_of=_patients(cases) if cases else None, confidence=opts.statistics.confidence)
    write_json(out, MRMCBlock(endpoint=f"reference grade {opts.positive_from} or worse",
                              positive_from=opts.positive_from, models=results_by_model, ustat=ustat))


# ----------------------------------------------------------------------------- decide
def decide(*, protocol, config, reference, readings, grades, cases, eligibility, mrmc, out, detection=None,
           counting=None):
    """The analysis plan's decisions and the lock status -> ``decisions.json`` (:class:`AnalysisPlanResults`)."""
    from study.plan.decide import StudyData, decide_endpoints
    from study.plan.lock import lock_status
    from study.results.decisions import AnalysisPlanResults

    p = load_protocol(protocol).protocol
    status = lock_status(json.loads(config), workdir=Path.cwd())
    if p.analysis_plan is None:
        write_json(out, AnalysisPlanResults(planned=False, lock=status))
        return
    included = set(_included_ids(eligibility))
    ref = pd.read_parquet(reference)
    ref = ref[ref["case_id"].astype(str).isin(included)][["case_id", "grade"]]
    model_grades = {}
    for g in _split(grades):
        df = pd.read_parquet(g)
        model_grades[Path(g).stem] = df[df["case_id"].astype(str).isin(included)][["case_id", "grade"]]
    rd = pd.read_parquet(readings)
    if "reader_group" not in rd:
        rd = rd.assign(reader_group=None)
    rd = rd[rd["case_id"].astype(str).isin(included)]
    cases_df = pd.read_parquet(cases)
    covariates = cases_df[["case_id"] + [c for c in p.subgroups if c in cases_df.columns]].astype({"case_id": str})
    s = p.statistics
    data = StudyData(levels=p.levels, reference=ref, model_grades=model_grades, readings=rd,
                     patient_of=_patients(cases), covariates=covariates,
                     detection={Path(f).stem: read_json(f) for f in _split(detection)},
                     counting={Path(f).stem: read_json(f) for f in _split(counting)},
                     mrmc=read_json(mrmc), operating_threshold=p.detection.operating_threshold,
                     confidence=s.confidence_level, bootstrap_replicates=s.bootstrap_replicates, seed=s.bootstrap_seed)
    write_json(out, decide_endpoints(p.analysis_plan, data, lock=status))


# ----------------------------------------------------------------------------- collect
def collect(*, config, results_dir, models, out):
    """Gather every step's output into ``results.json`` (the numbers the report shows)."""
    from study.collect import collect_results

    write_json(out, collect_results(json.loads(config), results_dir=Path(results_dir), models=_split(models)))


STEPS: dict[str, Callable[..., None]] = {
    f.__name__: f
    for f in (probe_images, fuse_reference, intake, quality, merge_quality, eligibility, reference, readings, predict, merge, grade,
              evaluate_detection, evaluate_counting, evaluate_agreement, evaluate_mrmc, decide, collect)
}
