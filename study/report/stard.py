"""The STARD 2015 checklist and where the report answers each item.

Items and wording follow the STARD 2015 list of essential items for reporting diagnostic
accuracy studies (Bossuyt PM, Reitsma JB, Bruns DE, et al. STARD 2015: an updated list of
essential items for reporting diagnostic accuracy studies. BMJ 2015;351:h5527), shortened.
Each item maps to the anchor id of the report section that answers it; the PDF prints the
section's page (CSS ``target-counter``) and :func:`study.report.render.render_report`
returns the page of every anchor.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StardItem:
    number: str
    part: str
    topic: str
    text: str
    section: str  # anchor id of the section answering it


ITEMS: tuple[StardItem, ...] = (
    StardItem("1", "Title or abstract", "Title", "Identification as a study of diagnostic accuracy using at least one measure of accuracy", "sec-title"),
    StardItem("2", "Abstract", "Summary", "Structured summary of study design, methods, results and conclusions", "sec-summary"),
    StardItem("3", "Introduction", "Background", "Scientific and clinical background, including the intended use and clinical role of the index test", "sec-introduction"),
    StardItem("4", "Introduction", "Objectives", "Study objectives and hypotheses", "sec-introduction"),
    StardItem("5", "Methods", "Study design", "Whether data collection was planned before the index test and reference standard were performed (prospective) or after (retrospective)", "sec-design"),
    StardItem("6", "Methods", "Participants", "Eligibility criteria", "sec-criteria"),
    StardItem("7", "Methods", "Participants", "On what basis potentially eligible participants were identified", "sec-design"),
    StardItem("8", "Methods", "Participants", "Where and when potentially eligible participants were identified (setting, location, dates)", "sec-design"),
    StardItem("9", "Methods", "Participants", "Whether participants formed a consecutive, random or convenience series", "sec-design"),
    StardItem("10a", "Methods", "Test methods", "Index test, in sufficient detail to allow replication", "sec-index-tests"),
    StardItem("10b", "Methods", "Test methods", "Reference standard, in sufficient detail to allow replication", "sec-reference"),
    StardItem("11", "Methods", "Test methods", "Rationale for choosing the reference standard (if alternatives exist)", "sec-reference"),
    StardItem("12a", "Methods", "Test methods", "Definition of and rationale for test positivity cut-offs or result categories of the index test, pre-specified or exploratory", "sec-index-tests"),
    StardItem("12b", "Methods", "Test methods", "Definition of and rationale for test positivity cut-offs or result categories of the reference standard, pre-specified or exploratory", "sec-reference"),
    StardItem("13a", "Methods", "Test methods", "Whether clinical information and reference standard results were available to the performers or readers of the index test", "sec-readers"),
    StardItem("13b", "Methods", "Test methods", "Whether clinical information and index test results were available to the assessors of the reference standard", "sec-reference"),
    StardItem("14", "Methods", "Analysis", "Methods for estimating or comparing measures of diagnostic accuracy", "sec-statistics"),
    StardItem("15", "Methods", "Analysis", "How indeterminate index test or reference standard results were handled", "sec-statistics"),
    StardItem("16", "Methods", "Analysis", "How missing data on the index test and reference standard were handled", "sec-statistics"),
    StardItem("17", "Methods", "Analysis", "Any analyses of variability in diagnostic accuracy, distinguishing pre-specified from exploratory", "sec-subgroups"),
    StardItem("18", "Methods", "Analysis", "Intended sample size and how it was determined", "sec-statistics"),
    StardItem("19", "Results", "Participants", "Flow of participants, using a diagram", "sec-flow"),
    StardItem("20", "Results", "Participants", "Baseline demographic and clinical characteristics of participants", "sec-baseline"),
    StardItem("21a", "Results", "Participants", "Distribution of severity of disease in those with the target condition", "sec-baseline"),
    StardItem("21b", "Results", "Participants", "Distribution of alternative diagnoses in those without the target condition", "sec-baseline"),
    StardItem("22", "Results", "Participants", "Time interval and any clinical interventions between index test and reference standard", "sec-design"),
    StardItem("23", "Results", "Test results", "Cross tabulation of the index test results (or their distribution) by the results of the reference standard", "sec-agreement"),
    StardItem("24", "Results", "Test results", "Estimates of diagnostic accuracy and their precision (such as 95% confidence intervals)", "sec-accuracy"),
    StardItem("25", "Results", "Test results", "Any adverse events from performing the index test or the reference standard", "sec-design"),
    StardItem("26", "Discussion", "Limitations", "Study limitations, including sources of potential bias, statistical uncertainty, and generalisability", "sec-limitations"),
    StardItem("27", "Discussion", "Implications", "Implications for practice, including the intended use and clinical role of the index test", "sec-implications"),
    StardItem("28", "Other information", "Registration", "Registration number and name of registry", "sec-information"),
    StardItem("29", "Other information", "Protocol", "Where the full study protocol can be accessed", "sec-information"),
    StardItem("30", "Other information", "Funding", "Sources of funding and other support; role of funders", "sec-information"),
)


def checklist(section_titles: dict[str, str], pages: dict[str, int] | None = None) -> list[dict[str, str | int | None]]:
    """Rows ``{number, part, topic, text, section, section_title, page}`` for the report's checklist.

    ``section_titles`` maps anchor id -> section title (every item's section must be there:
    a missing one is a programming error, raised as KeyError so a test catches it).
    """
    rows: list[dict[str, str | int | None]] = []
    for it in ITEMS:
        rows.append({"number": it.number, "part": it.part, "topic": it.topic, "text": it.text,
                     "section": it.section, "section_title": section_titles[it.section],
                     "page": (pages or {}).get(it.section)})
    return rows
