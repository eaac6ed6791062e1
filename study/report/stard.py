"""The STARD 2015 checklist and where the report answers each item.

Items and wording follow the STARD 2015 list of essential items for reporting diagnostic
accuracy studies (Bossuyt PM, Reitsma JB, Bruns DE, et al. STARD 2015: an updated list of
essential items for reporting diagnostic accuracy studies. BMJ 2015;351:h5527), shortened.
Each item maps to the anchor id of the report section that answers it and to the evidence in
results.json that decides whether it is reported (:mod:`study.report.checklist_status`); the
PDF prints the section's page (CSS ``target-counter``) and
:func:`study.report.render.render_report` returns the page of every anchor.
"""

from __future__ import annotations

from study.report.checklist_status import ChecklistItem, checklist_rows
from study.results import Results

#: an item of STARD 2015; ``evidence`` says what in results.json answers it
#: (:mod:`study.report.checklist_status`)
StardItem = ChecklistItem


ITEMS: tuple[StardItem, ...] = (
    StardItem("1", "Title or abstract", "Title", "Identification as a study of diagnostic accuracy using at least one measure of accuracy", "sec-title", "report"),
    StardItem("2", "Abstract", "Summary", "Structured summary of study design, methods, results and conclusions", "sec-summary", "report"),
    StardItem("3", "Introduction", "Background", "Scientific and clinical background, including the intended use and clinical role of the index test", "sec-introduction", "info:intended_use"),
    StardItem("4", "Introduction", "Objectives", "Study objectives and hypotheses", "sec-introduction", "info:hypotheses|plan"),
    StardItem("5", "Methods", "Study design", "Whether data collection was planned before the index test and reference standard were performed (prospective) or after (retrospective)", "sec-design", "info:design"),
    StardItem("6", "Methods", "Participants", "Eligibility criteria", "sec-criteria", "report"),
    StardItem("7", "Methods", "Participants", "On what basis potentially eligible participants were identified", "sec-design", "info:identification"),
    StardItem("8", "Methods", "Participants", "Where and when potentially eligible participants were identified (setting, location, dates)", "sec-design", "info:setting"),
    StardItem("9", "Methods", "Participants", "Whether participants formed a consecutive, random or convenience series", "sec-design", "info:series"),
    StardItem("10a", "Methods", "Test methods", "Index test, in sufficient detail to allow replication", "sec-index-tests", "card:architecture,input_size,preprocessing,version"),
    StardItem("10b", "Methods", "Test methods", "Reference standard, in sufficient detail to allow replication", "sec-reference", "reference:annotators,qualifications,disagreements"),
    StardItem("11", "Methods", "Test methods", "Rationale for choosing the reference standard (if alternatives exist)", "sec-reference", "info:reference_rationale"),
    StardItem("12a", "Methods", "Test methods", "Definition of and rationale for test positivity cut-offs or result categories of the index test, pre-specified or exploratory", "sec-index-tests", "card:threshold_rationale"),
    StardItem("12b", "Methods", "Test methods", "Definition of and rationale for test positivity cut-offs or result categories of the reference standard, pre-specified or exploratory", "sec-reference", "report"),
    StardItem("13a", "Methods", "Test methods", "Whether clinical information and reference standard results were available to the performers or readers of the index test", "sec-readers", "info:blinding_readers"),
    StardItem("13b", "Methods", "Test methods", "Whether clinical information and index test results were available to the assessors of the reference standard", "sec-reference", "info:blinding_reference"),
    StardItem("14", "Methods", "Analysis", "Methods for estimating or comparing measures of diagnostic accuracy", "sec-statistics", "report"),
    StardItem("15", "Methods", "Analysis", "How indeterminate index test or reference standard results were handled", "sec-statistics", "report"),
    StardItem("16", "Methods", "Analysis", "How missing data on the index test and reference standard were handled", "sec-statistics", "report"),
    StardItem("17", "Methods", "Analysis", "Any analyses of variability in diagnostic accuracy, distinguishing pre-specified from exploratory", "sec-subgroups", "subgroups"),
    StardItem("18", "Methods", "Analysis", "Intended sample size and how it was determined", "sec-statistics", "info:sample_size"),
    StardItem("19", "Results", "Participants", "Flow of participants, using a diagram", "sec-flow", "block:flow"),
    StardItem("20", "Results", "Participants", "Baseline demographic and clinical characteristics of participants", "sec-baseline", "block:baseline"),
    StardItem("21a", "Results", "Participants", "Distribution of severity of disease in those with the target condition", "sec-baseline", "block:baseline"),
    StardItem("21b", "Results", "Participants", "Distribution of alternative diagnoses in those without the target condition", "sec-baseline", "report"),
    StardItem("22", "Results", "Participants", "Time interval and any clinical interventions between index test and reference standard", "sec-design", "report"),
    StardItem("23", "Results", "Test results", "Cross tabulation of the index test results (or their distribution) by the results of the reference standard", "sec-agreement", "block:agreement"),
    StardItem("24", "Results", "Test results", "Estimates of diagnostic accuracy and their precision (such as 95% confidence intervals)", "sec-accuracy", "report"),
    StardItem("25", "Results", "Test results", "Any adverse events from performing the index test or the reference standard", "sec-design", "na:software applied to existing photographs: no adverse events possible"),
    StardItem("26", "Discussion", "Limitations", "Study limitations, including sources of potential bias, statistical uncertainty, and generalisability", "sec-limitations", "report"),
    StardItem("27", "Discussion", "Implications", "Implications for practice, including the intended use and clinical role of the index test", "sec-implications", "info:intended_use"),
    StardItem("28", "Other information", "Registration", "Registration number and name of registry", "sec-information", "info:registration"),
    StardItem("29", "Other information", "Protocol", "Where the full study protocol can be accessed", "sec-information", "info:protocol_access"),
    StardItem("30", "Other information", "Funding", "Sources of funding and other support; role of funders", "sec-information", "info:funding"),
)


def checklist(results: Results, section_titles: dict[str, str],
              pages: dict[str, int] | None = None) -> list[dict[str, str | int | None]]:
    """Rows ``{number, part, topic, text, section, section_title, page, status, basis}`` of the STARD checklist.

    The status (reported / not reported / not applicable) is computed from ``results``
    (:func:`study.report.checklist_status.item_status`).
    """
    return checklist_rows(ITEMS, results, section_titles, pages)
