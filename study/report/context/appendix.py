"""Registration, protocol and funding; provenance appendix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from study.report import format as F
from study.report.context.common import info_text, unavailable
from study.report.format import Table, fmt_int
from study.results.provenance import Provenance
from study.results.study import StudyBlock


def information_context(study: StudyBlock | None) -> dict[str, Any]:
    """Registration, where the protocol can be accessed, and funding (STARD 28-30)."""
    info = study.information.supplied() if study is not None else {}
    if study is not None:
        pr = study.protocol
        where = (f"The analysis protocol is the file {Path(pr.path).name or F.DASH} (name {pr.name}, version "
                 f"{pr.version}, sha256 {pr.sha256}), listed in Appendix B.")
    else:
        where = (f"The analysis protocol is the file {F.DASH} (name {F.DASH}, version {F.DASH}, sha256 {F.DASH}), "
                 "listed in Appendix B.")
    return {
        "registration": info_text(info, "registration", "Not registered, or the registration was not supplied."),
        "protocol": info_text(info, "protocol_access", where),
        "funding": info_text(info, "funding", "Not supplied by the investigators."),
    }


def _inputs_table(prov: Provenance) -> Table:
    it = Table("tab-inputs", "Input files and their sha256", ["Role", "File", "sha256", "Bytes"])
    for role, e in sorted(prov.inputs.items()):
        if e is None:
            it.add([role, "absent", F.DASH, F.DASH])
        else:
            it.add([role, e.path, e.sha256, fmt_int(e.bytes)])
    p = prov.protocol
    if p.sha256 not in {e.sha256 for e in prov.inputs.values() if e is not None}:
        it.add(["protocol (file)", p.path, p.sha256, fmt_int(p.bytes)])
    img = prov.images_digest
    it.add([f"images ({fmt_int(img.n_images)} files)", "digest of all images", img.sha256 or F.DASH, F.DASH])
    it.note(f"Images digest: {img.method}.")
    return it


def _models_table(prov: Provenance) -> Table:
    mt = Table("tab-model-files", "Model files", ["Model", "Backend", "File", "Path", "sha256"])
    for m, e in sorted(prov.models.items()):
        backend = e.backend or F.DASH
        for k, f in sorted(e.files.items()):
            mt.add([m, backend, k, f.path, f.sha256])
        if not e.files:
            mt.add([m, backend, F.DASH, F.DASH, "not recorded"])
    return mt


def _software_table(prov: Provenance) -> Table:
    sw = prov.software
    swt = Table("tab-software", "Software and library versions", ["Component", "Version"])
    for name, version in (("acne-study", sw.acne_study), ("python", sw.python),
                          ("implementation", sw.implementation), ("platform", sw.platform)):
        if version:
            swt.add([name, version])
    for k, v in sorted(sw.libraries.items()):
        swt.add([k, v if v else "not installed"])
    swt.add(["git commit", (prov.git_commit or "not recorded")
             + (" (uncommitted changes present)" if prov.git_dirty else "")])
    return swt


def provenance_context(provenance: Provenance | None) -> dict[str, Any]:
    """Appendix B: input files, model files, software versions and the resolved configuration."""
    if provenance is None:
        return unavailable("results.json holds no provenance record.")
    mt = _models_table(provenance)
    return {"available": True, "inputs": _inputs_table(provenance).to_dict(), "models": mt.to_dict() if mt.rows else None,
            "software": _software_table(provenance).to_dict(),
            "config": json.dumps(provenance.config, indent=2, sort_keys=True, ensure_ascii=False)}
