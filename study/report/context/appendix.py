"""Registration, protocol and funding; provenance appendix."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from study.report import format as F
from study.report.context.common import info_text, information, unavailable
from study.report.format import Table, fmt_int


def information_context(results: Mapping) -> dict:
    info = information(results)
    st = results.get("study") or {}
    pr = st.get("protocol") or {}
    return {
        "registration": info_text(info, "registration", "Not registered, or the registration was not supplied."),
        "protocol": info_text(info, "protocol_access",
                               f"The analysis protocol is the file {Path(str(pr.get('path', ''))).name or F.DASH} "
                               f"(name {pr.get('name', F.DASH)}, version {pr.get('version', F.DASH)}, sha256 "
                               f"{pr.get('sha256', F.DASH)}), listed in Appendix B."),
        "funding": info_text(info, "funding", "Not supplied by the investigators."),
    }


def provenance_context(results: Mapping) -> dict:
    prov = results.get("provenance") or {}
    if not prov:
        return unavailable("results.json holds no provenance record.")
    it = Table("tab-inputs", "Input files and their sha256", ["Role", "File", "sha256", "Bytes"])
    for role, e in sorted((prov.get("inputs") or {}).items()):
        if e is None:
            it.add([role, "absent", F.DASH, F.DASH])
        else:
            it.add([role, str(e.get("path")), str(e.get("sha256")), fmt_int(e.get("bytes"))])
    p = prov.get("protocol") or {}
    if p and p.get("sha256") not in {(e or {}).get("sha256") for e in (prov.get("inputs") or {}).values()}:
        it.add(["protocol (file)", str(p.get("path")), str(p.get("sha256")), fmt_int(p.get("bytes"))])
    img = prov.get("images_digest") or {}
    if img:
        it.add([f"images ({fmt_int(img.get('n_images'))} files)", "digest of all images", str(img.get("sha256") or F.DASH), F.DASH])
        it.note(f"Images digest: {img.get('method', '')}.")
    mt = Table("tab-model-files", "Model files", ["Model", "Backend", "File", "Path", "sha256"])
    for m, e in sorted((prov.get("models") or {}).items()):
        files = e.get("files") or ({"weights": {"path": e.get("weights"), "sha256": e.get("sha256")}} if e.get("sha256") else {})
        for k, f in sorted(files.items()):
            mt.add([m, str(e.get("backend") or F.DASH), k, str(f.get("path")), str(f.get("sha256"))])
        if not files:
            mt.add([m, str(e.get("backend") or F.DASH), F.DASH, F.DASH, "not recorded"])
    sw = prov.get("software") or ((results.get("study") or {}).get("software")) or {}
    swt = Table("tab-software", "Software and library versions", ["Component", "Version"])
    for k in ("acne_study", "python", "implementation", "platform"):
        if sw.get(k):
            swt.add([k.replace("_", "-"), str(sw[k])])
    for k, v in sorted((sw.get("libraries") or {}).items()):
        swt.add([k, str(v) if v else "not installed"])
    swt.add(["git commit", str(prov.get("git_commit") or "not recorded")
             + (" (uncommitted changes present)" if prov.get("git_dirty") else "")])
    cfg = prov.get("config") or (results.get("study") or {}).get("config") or {}
    return {"available": True, "inputs": it.to_dict(), "models": mt.to_dict() if mt.rows else None,
            "software": swt.to_dict(), "config": json.dumps(cfg, indent=2, sort_keys=True, ensure_ascii=False)}
