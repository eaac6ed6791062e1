"""Title page."""

from __future__ import annotations

from study.report import format as F
from study.report.context.common import report_date
from study.results.provenance import Provenance
from study.results.study import StudyBlock


def title_context(study: StudyBlock | None, provenance: Provenance | None, *,
                  schema_version: int | None) -> dict[str, object]:
    """The title page: study, protocol identity, software and the git state of the harness."""
    return {
        "study": study.name if study is not None else F.DASH,
        "protocol_name": study.protocol.name if study is not None else F.DASH,
        "protocol_title": study.protocol.title if study is not None else "",
        "protocol_version": study.protocol.version if study is not None else F.DASH,
        "protocol_sha256": study.protocol.sha256 if study is not None else F.DASH,
        "date": report_date(),
        "software_version": study.software.acne_study if study is not None else F.DASH,
        "python": study.software.python if study is not None else F.DASH,
        "git_commit": (provenance.git_commit if provenance is not None else None) or "not recorded",
        "git_dirty": provenance.git_dirty if provenance is not None else None,
        "schema_version": schema_version,
    }
