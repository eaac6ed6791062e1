"""Title page."""

from __future__ import annotations

from collections.abc import Mapping

from study.report import format as F
from study.report.context.common import report_date


def title_context(results: Mapping) -> dict:
    st = results.get("study") or {}
    pr = st.get("protocol") or {}
    prov = results.get("provenance") or {}
    sw = st.get("software") or (prov.get("software") or {})
    return {
        "study": st.get("name") or F.DASH,
        "protocol_name": pr.get("name") or F.DASH,
        "protocol_title": pr.get("title") or "",
        "protocol_version": pr.get("version") or F.DASH,
        "protocol_sha256": pr.get("sha256") or (prov.get("protocol") or {}).get("sha256") or F.DASH,
        "date": st.get("generated") or report_date(),
        "software_version": sw.get("acne_study") or F.DASH,
        "python": sw.get("python") or F.DASH,
        "git_commit": prov.get("git_commit") or "not recorded",
        "git_dirty": prov.get("git_dirty"),
        "schema_version": results.get("schema_version"),
    }
