"""The CLAIM 2024 checklist and where (and whether) the report answers each item.

Items follow the Checklist for Artificial Intelligence in Medical Imaging, 2024 update (Tejani AS,
Klontzas ME, Gatti AA, et al. Checklist for Artificial Intelligence in Medical Imaging (CLAIM):
2024 Update. Radiology: Artificial Intelligence 2024;6(4):e240300), which extends CLAIM 2020
(Mongan J, Moy L, Kahn CE Jr. Radiology: Artificial Intelligence 2020;2(2):e200029). The item
texts here are shortened and reworded (not quoted). Each item names the report section that
answers it and the evidence in results.json that decides its status
(:mod:`study.report.checklist_status`). Items about developing a model (partitions,
initialisation, training, model selection) are answered by the model card of each model
(``card:`` in its spec); a study that only tests a model reports them only through the card.
"""

from __future__ import annotations

from study.report.checklist_status import ChecklistItem, checklist_rows
from study.results import Results

__all__ = ["ITEMS", "checklist"]

_I = ChecklistItem
ITEMS: tuple[ChecklistItem, ...] = (
    _I("1", "Title and abstract", "Title", "Identifies the study as one of AI methodology and names the kind of technology", "sec-title", "report"),
    _I("2", "Title and abstract", "Abstract", "Structured summary of design, methods, results and conclusions", "sec-summary", "report"),
    _I("3", "Introduction", "Background", "Scientific and clinical background; intended use and clinical role of the AI", "sec-introduction", "info:intended_use"),
    _I("4", "Introduction", "Objectives", "Study aims, objectives and hypotheses", "sec-introduction", "info:hypotheses|plan"),
    _I("5", "Methods", "Study design", "Prospective or retrospective data collection", "sec-design", "info:design"),
    _I("6", "Methods", "Study design", "Study goal (model creation, feasibility, exploratory, non-inferiority ...)", "sec-introduction", "info:hypotheses|plan"),
    _I("7", "Methods", "Data", "Data sources", "sec-design", "info:setting"),
    _I("8", "Methods", "Data", "Eligibility criteria and how, where and when cases were identified", "sec-criteria", "info:identification"),
    _I("9", "Methods", "Data", "Data pre-processing steps", "sec-index-tests", "card:preprocessing"),
    _I("10", "Methods", "Data", "Selection of data subsets, if any", "sec-criteria", "report"),
    _I("11", "Methods", "Data", "Definitions of data elements, with references to common data elements", "sec-reference", "none:no common data elements are referenced"),
    _I("12", "Methods", "Data", "De-identification methods", "sec-design", "none:de-identification of the images is not recorded by the harness"),
    _I("13", "Methods", "Data", "How missing data were handled", "sec-statistics", "report"),
    _I("14", "Methods", "Data", "Image acquisition: devices and settings", "sec-baseline", "block:baseline"),
    _I("15", "Methods", "Reference standard", "Definition of the reference standard, in enough detail to replicate", "sec-reference", "reference:annotators,disagreements"),
    _I("16", "Methods", "Reference standard", "Rationale for the reference standard", "sec-reference", "info:reference_rationale"),
    _I("17", "Methods", "Reference standard", "Source of the annotations; annotators' qualifications and preparation", "sec-reference", "reference:annotators,qualifications"),
    _I("18", "Methods", "Reference standard", "Annotation tools", "sec-reference", "reference:annotation_tool"),
    _I("19", "Methods", "Reference standard", "Inter- and intra-rater variability; how discrepancies were reduced or resolved", "sec-reference", "reference:disagreements"),
    _I("20", "Methods", "Data partitions", "Intended sample size and how it was determined", "sec-statistics", "info:sample_size"),
    _I("21", "Methods", "Data partitions", "How data were assigned to partitions, with proportions", "sec-index-tests", "card:training_data.size,tuning_data.description"),
    _I("22", "Methods", "Data partitions", "Level at which partitions are disjoint (image, patient, site); no test patient in training", "sec-index-tests", "card:patient_separation"),
    _I("23", "Methods", "Model", "Detailed model description: inputs, outputs, architecture", "sec-index-tests", "card:architecture,input_size"),
    _I("24", "Methods", "Model", "Software libraries, frameworks and packages, with versions", "sec-provenance", "report"),
    _I("25", "Methods", "Model", "Initialisation of model parameters (random, transfer learning)", "sec-index-tests", "card:architecture"),
    _I("26", "Methods", "Training", "Training approach: augmentation, hyperparameters, number of models trained", "sec-index-tests", "card:training_data.description,version"),
    _I("27", "Methods", "Training", "How the final model was selected; operating threshold and its rationale", "sec-index-tests", "card:threshold_rationale"),
    _I("28", "Methods", "Training", "Ensembling, if used", "sec-index-tests", "card:architecture"),
    _I("29", "Methods", "Evaluation", "Performance metrics and their justification", "sec-statistics", "report"),
    _I("30", "Methods", "Evaluation", "Statistical measures of significance and uncertainty", "sec-statistics", "report"),
    _I("31", "Methods", "Evaluation", "Robustness or sensitivity analyses", "sec-subgroups", "subgroups"),
    _I("32", "Methods", "Evaluation", "Methods of explainability or interpretability and their validation", "sec-index-tests", "none:the harness computes no saliency or explanation"),
    _I("33", "Methods", "Evaluation", "Validation on external data (another site or population than training)", "sec-index-tests", "card:training_data.sites"),
    _I("34", "Methods", "Evaluation", "Performance across demographic groups (fairness, bias)", "sec-subgroups", "subgroups"),
    _I("35", "Results", "Data", "Flow of cases with inclusions and exclusions, as a diagram", "sec-flow", "block:flow"),
    _I("36", "Results", "Data", "Demographic and clinical characteristics of the cases in each partition", "sec-baseline", "block:baseline"),
    _I("37", "Results", "Model performance", "Performance of each final model on the test data", "sec-detection", "block:detection"),
    _I("38", "Results", "Model performance", "Estimates of diagnostic accuracy with their precision (95% CI)", "sec-accuracy", "block:agreement"),
    _I("39", "Results", "Model performance", "Failure analysis of incorrectly classified cases", "sec-failures", "block:counting"),
    _I("40", "Discussion", "Limitations", "Limitations: potential bias, statistical uncertainty, generalisability", "sec-limitations", "report"),
    _I("41", "Discussion", "Implications", "Implications for practice, intended use and clinical role", "sec-implications", "info:intended_use"),
    _I("42", "Other information", "Registration", "Registration number and registry", "sec-information", "info:registration"),
    _I("43", "Other information", "Protocol", "Where the full study protocol can be accessed", "sec-information", "info:protocol_access"),
    _I("44", "Other information", "Funding", "Sources of funding and other support; role of funders", "sec-information", "info:funding"),
)


def checklist(results: Results, section_titles: dict[str, str],
              pages: dict[str, int] | None = None) -> list[dict[str, str | int | None]]:
    """Rows ``{number, part, topic, text, section, section_title, page, status, basis}`` of the CLAIM checklist."""
    return checklist_rows(ITEMS, results, section_titles, pages)
