"""The flow of cases as a diagram: the stages the report shows and the STARD 2015 flow SVG.

:func:`flow_view` turns the ``flow`` block (:class:`study.results.flow.Flow`, written by
:func:`study.eligibility.build_flow`) into ordered stages; the flow table
(``study.report.context.flow``), the limitations and the matplotlib figure
(``study.report.figures.flow_figure``) read them. :func:`flow_svg` draws the diagram the report
shows (figure ``flow``) as standalone SVG text, without matplotlib.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from study.protocol import Protocol
from study.report.text import report_text
from study.results.baseline import Baseline
from study.results.flow import Flow

__all__ = ["FlowExclusion", "FlowStage", "FlowView", "ReferenceSplit", "flow_svg", "flow_view", "images_and_patients",
           "reference_split"]


@dataclass(frozen=True)
class FlowExclusion:
    """Cases leaving the flow at one stage: how many (None: per-reader counts only) and why."""

    label: str
    n: int | None
    reasons: list[tuple[str, int]] = field(default_factory=list)


@dataclass(frozen=True)
class FlowStage:
    """One box of the diagram: the cases at this stage, and those excluded from it."""

    label: str
    n: int
    excluded: FlowExclusion | None = None
    #: patients with at least one image at this stage (None: not known, or not a stage of images)
    n_patients: int | None = None


@dataclass(frozen=True)
class FlowView:
    stages: list[FlowStage]
    check: bool


@dataclass(frozen=True)
class ReferenceSplit:
    """Included cases by reference result on a binary endpoint: grade at or above ``cut`` is positive."""

    cut: str
    source: str  # the protocol setting that defines the endpoint
    positive: int
    negative: int
    missing: int


def reference_split(baseline: Baseline | None, protocol: Protocol) -> list[ReferenceSplit]:
    """Included cases by reference result for each binary endpoint of the protocol.

    The binary endpoints are the MRMC analysis's (``statistics.mrmc_positive_from``) and those
    of the analysis plan (``analysis_plan.endpoints[].positive_from``); the counts are the
    baseline's reference grades of the included cases. Empty without a binary endpoint.
    """
    if baseline is None:
        return []
    cuts: dict[str, str] = {}
    if protocol.statistics.mrmc_positive_from:
        cuts[protocol.statistics.mrmc_positive_from] = "MRMC binary endpoint"
    plan = protocol.analysis_plan
    for e in plan.endpoints if plan is not None else []:
        if e.positive_from and e.positive_from not in cuts:
            cuts[e.positive_from] = f"analysis plan endpoint {e.id}"
    levels = list(protocol.grading.levels)
    counts = {lv.value: lv.n for lv in baseline.severity.levels}
    out = []
    for cut, source in cuts.items():
        positive = sum(n for v, n in counts.items() if v in levels and levels.index(v) >= levels.index(cut))
        negative = sum(n for v, n in counts.items() if v in levels and levels.index(v) < levels.index(cut))
        out.append(ReferenceSplit(cut, source, positive, negative, baseline.severity.n_missing))
    return out


def _reasons(counts: dict[str, int]) -> list[tuple[str, int]]:
    """Non-zero reasons, most frequent first (ties by name), underscores as spaces."""
    items = [(k.replace("_", " "), int(v)) for k, v in counts.items() if v]
    return sorted(items, key=lambda kv: (-kv[1], kv[0]))


def _check_label(key: str, criteria: dict[str, str]) -> str:
    """``quality:<reason>`` -> the reason, ``criterion:<id>`` -> the criterion's description."""
    kind, _, name = key.partition(":")
    if kind == "criterion":
        return criteria.get(name) or name
    return (name or kind).replace("_", " ")


def _step_reasons(flow: Flow, step: str, first: dict[str, int]) -> list[tuple[str, int]]:
    """Reasons listed for the cases excluded at ``step``: every check they failed, with a
    "more than one reason" line, when the flow records them; else the first failed check."""
    checks = flow.exclusion_checks[step] if flow.exclusion_checks and step in flow.exclusion_checks else None
    if checks is None:
        return _reasons(first)
    criteria = {c.id: c.description for c in flow.criteria}
    items = [(_check_label(k, criteria), int(v)) for k, v in checks.by_check.items() if v]
    items = sorted(items, key=lambda kv: -kv[1])
    return items + ([("more than one reason", checks.more_than_one)] if checks.more_than_one else [])


def flow_view(flow: Flow, *, reference: list[ReferenceSplit] | None = None) -> FlowView:
    """The diagram stages of ``flow``, top to bottom.

    Received -> assessed for image quality (excluded: failed the gate) -> assessed for
    eligibility (excluded: not eligible) -> included [-> by reference result on each binary
    endpoint] -> analysed by each model -> graded by the readers (excluded: included cases
    each reader did not grade) [-> readings of excluded cases, not analysed]. A case is
    excluded at its first failed check; its reasons list every check it failed (a case failing
    two is counted under each and in "more than one reason"), so reasons may add up to more
    than the excluded number. Flows written before every check was recorded list the first only.
    """
    pc = flow.patients
    received = FlowStage("Images received", flow.received,
                         FlowExclusion("Not decodable", flow.not_decodable,
                                       _step_reasons(flow, "decodable", {})) if flow.not_decodable else None,
                         n_patients=pc.received if pc else None)
    stages = [
        received,
        FlowStage("Assessed for image quality", flow.decodable,
                  FlowExclusion("Failed the quality gate", flow.failed_quality.total,
                                _step_reasons(flow, "quality", flow.failed_quality.by_reason)),
                  n_patients=pc.decodable if pc else None),
        FlowStage("Assessed for eligibility", flow.passed_quality,
                  FlowExclusion("Not eligible", flow.failed_eligibility.total,
                                _step_reasons(flow, "eligibility", flow.failed_eligibility.by_criterion)),
                  n_patients=pc.passed_quality if pc else None),
        FlowStage("Included (reference standard available)", flow.included, n_patients=pc.included if pc else None),
    ]
    for sp in reference or []:
        stages.append(FlowStage(f"Included, reference positive (grade {sp.cut} or worse; {sp.source})", sp.positive))
        stages.append(FlowStage(f"Included, reference negative (grade below {sp.cut})", sp.negative))
    stages += [FlowStage(f"Analysed by model {m}", n, n_patients=pc.included if pc else None)
               for m, n in sorted(flow.analysed.models.items())]
    readers = flow.analysed.readers
    if readers:
        missing = flow.missing_readings.by_reader if flow.missing_readings is not None else {}
        items = [(str(k), int(v)) for k, v in sorted(missing.items()) if v]
        stages.append(FlowStage(
            f"Graded by {len(readers)} readers ({min(readers.values())}-{max(readers.values())} images each)",
            max(readers.values()),
            FlowExclusion("Included cases not graded, per reader", None, items) if items else None))
    mr = flow.missing_readings
    if mr is not None and mr.readings_of_excluded_cases:
        of = f" of {mr.excluded_cases_read}" if mr.excluded_cases_read is not None else " of"
        stages.append(FlowStage(f"Readings{of} excluded cases, not analysed (count of readings)",
                                mr.readings_of_excluded_cases))
    return FlowView(stages=stages, check=flow.check)


#: the longest line a box of the diagram prints (longer ones are cut by :func:`study.report.text.report_text`)
LABEL_CHARS = 120


def images_and_patients(n: int, n_patients: int | None) -> str:
    """``"n = 136 images, 93 patients"`` (``"n = 136 images"`` when the patients are not known)."""
    return f"n = {n} images" + (f", {n_patients} patients" if n_patients is not None else "")


def flow_svg(flow: Flow, *, width: int = 720, reference: list[ReferenceSplit] | None = None) -> str:
    """A STARD-style flow diagram of ``flow`` (:func:`study.eligibility.build_flow`) as standalone SVG text.

    Main boxes run top to bottom (received, decodable, passed quality, included, analysed);
    each exclusion step has a box on the right listing every check its excluded cases failed
    (see :func:`flow_view`). ``reference`` (:func:`reference_split`) adds the included cases by
    reference result; readings of excluded cases are counted beside the analysed box.
    """
    font = 12
    line_h = 16
    main_x, main_w = 20, 330
    side_x = main_x + main_w + 60
    side_w = width - side_x - 10
    parts: list[str] = []
    y = 10

    def box(x: int, y: int, w: int, lines: list[str], *, bold_first: bool = True) -> int:
        h = 10 + line_h * len(lines)
        parts.append(f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="4" fill="#ffffff" stroke="#333" stroke-width="1.2"/>')
        for i, t in enumerate(lines):
            weight = ' font-weight="bold"' if (i == 0 and bold_first) else ""
            parts.append(f'<text x="{x + 8}" y="{y + 4 + line_h * (i + 1) - 4}" font-size="{font}"{weight}>{escape(report_text(t, max_chars=LABEL_CHARS))}</text>')
        return h

    def down_arrow(y0: int, y1: int) -> None:
        cx = main_x + main_w // 2
        parts.append(f'<line x1="{cx}" y1="{y0}" x2="{cx}" y2="{y1 - 6}" stroke="#333" stroke-width="1.2"/>')
        parts.append(f'<polygon points="{cx - 5},{y1 - 7} {cx + 5},{y1 - 7} {cx},{y1}" fill="#333"/>')

    def side_arrow(y0: int, y_box: int) -> None:
        cx = main_x + main_w // 2
        parts.append(f'<line x1="{cx}" y1="{y0}" x2="{side_x - 6}" y2="{y0}" stroke="#333" stroke-width="1.2"/>')
        parts.append(f'<polygon points="{side_x - 7},{y0 - 5} {side_x - 7},{y0 + 5} {side_x},{y0}" fill="#333"/>')

    fq = flow.failed_quality
    fe = flow.failed_eligibility
    # on its own line: the side box is too narrow for it beside the count
    every = ["every failed check, per case:"] if flow.exclusion_checks else []
    not_dec = [f"  {r}: {k}" for r, k in _step_reasons(flow, "decodable", {}) if r != "not decodable"]
    pc = flow.patients
    included = [f"Included in the analysis ({images_and_patients(flow.included, pc.included if pc else None)})"]
    if pc is not None and pc.images_per_included_patient_mean is not None:
        included.append(f"  images per patient: mean {pc.images_per_included_patient_mean:.2f}, "
                        f"range {pc.images_per_included_patient_min}-{pc.images_per_included_patient_max}")
    for sp in reference or []:
        included.append(f"  grade {sp.cut} or worse: {sp.positive}; below: {sp.negative}"
                        + (f"; no grade: {sp.missing}" if sp.missing else ""))
    steps: list[tuple[list[str], list[str] | None]] = [
        ([f"Images received ({images_and_patients(flow.received, pc.received if pc else None)})"],
         [f"Not decodable (n = {flow.not_decodable} images)", "missing, empty, truncated or not an image"]
         + (["  also failing:"] + not_dec if not_dec else [])),
        ([f"Decodable ({images_and_patients(flow.decodable, pc.decodable if pc else None)})"],
         [f"Failed image quality (n = {fq.total} images)", *every]
         + [f"  {r}: {k}" for r, k in _step_reasons(flow, "quality", fq.by_reason)]),
        ([f"Passed quality ({images_and_patients(flow.passed_quality, pc.passed_quality if pc else None)})"],
         [f"Not eligible (n = {fe.total} images)", *every]
         + [f"  {r}: {k}" for r, k in _step_reasons(flow, "eligibility", fe.by_criterion)]),
        (included, None),
    ]
    for i, (main, side) in enumerate(steps):
        h = box(main_x, y, main_w, main)
        next_y = y + h + 30
        if side is not None:
            sh = 10 + line_h * len(side)
            mid = y + h + 15
            side_y = mid - min(sh // 2, 14)
            side_arrow(mid, side_y)
            box(side_x, side_y, side_w, side)
            next_y = max(next_y, side_y + sh + 16)
        down_arrow(y + h, next_y)
        y = next_y
    lines = ["Analysed (images)"]
    for m, k in flow.analysed.models.items():
        lines.append(f"  model {m}: {k}")
    groups = flow.reader_groups
    for r, k in flow.analysed.readers.items():
        g = f" ({groups[r]})" if r in groups and groups[r] else ""
        lines.append(f"  reader {r}{g}: {k}")
    if len(lines) == 1:
        lines.append("  (no models or readers given)")
    h = box(main_x, y, main_w, lines)
    mr = flow.missing_readings
    if mr is not None:
        side = ["Included images not read"] + [f"  {r}: {k}" for r, k in mr.by_reader.items()]
        side.append(f"  read by no reader: {mr.cases_without_any_reading}")
        if mr.readings_of_excluded_cases:
            of = f" of {mr.excluded_cases_read}" if mr.excluded_cases_read is not None else " of"
            side += [f"Readings{of} excluded cases, not analysed:", f"  {mr.readings_of_excluded_cases} readings"]
        box(side_x, y, side_w, side)
        h = max(h, 10 + line_h * len(side))
    height = y + h + 10
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Arial, sans-serif" role="img" '
            f'aria-label="Flow of cases (STARD 2015 item 19)">')
    return head + "<title>Flow of cases (STARD 2015 item 19)</title>" + "".join(parts) + "</svg>\n"
