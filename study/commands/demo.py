"""``study demo [--out DIR] [--cores N]``: build the demo cohort if missing and run the demo study.

The cohort goes to ``DIR/cohort/``, the study's results to ``DIR/results/``; the last line
printed is the path of the PDF report.
"""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser("demo", help="run the demo study (synthetic cohort, demo model, simulated readers)",
                              description=__doc__)
    p.add_argument("--out", default="demo-out", help="output folder (default ./demo-out)")
    p.add_argument("--cores", type=int, default=2, help="cores Snakemake may use (default 2)")
    p.add_argument("--verbose", action="store_true", help="show Snakemake's own log instead of the progress display")
    p.set_defaults(func=_demo)


def demo_config(out_dir) -> dict:
    """The demo study config (config/demo.yaml) with every path placed under ``out_dir``."""
    from pathlib import Path

    import yaml

    from study.config import REPO_ROOT

    out_dir = Path(out_dir).resolve()
    with open(REPO_ROOT / "config" / "demo.yaml", encoding="utf-8") as f:
        cfg = yaml.safe_load(f)
    cohort = out_dir / "cohort"
    cfg["protocol"] = str((REPO_ROOT / cfg["protocol"]).resolve())
    cfg["results_dir"] = str(out_dir / "results")
    cfg["cohort"] = {
        "manifest": str(cohort / "manifest.csv"),
        "image_root": str(cohort / "images"),
        "annotations": str(cohort / "annotations.json"),
        "reference": str(cohort / "reference.csv"),
        "readings": str(cohort / "readings.csv"),
        "synth": cfg["cohort"]["synth"],
    }
    for m in cfg["models"]:
        if "spec" in m:
            m["spec"] = str((REPO_ROOT / m["spec"]).resolve())
    return cfg


def _demo(args) -> int:
    from pathlib import Path

    from study.config import validate_config
    from study.errors import raise_if
    from study.io import dumps_json, write_text
    from study.workflow import run_snakemake

    out = Path(args.out).resolve()
    cfg = demo_config(out)
    raise_if(validate_config(cfg, source="demo config"))
    config_path = out / "demo-config.yaml"
    new = dumps_json(cfg)  # JSON is valid YAML; canonical so an unchanged demo re-runs nothing
    if not config_path.exists() or config_path.read_text(encoding="utf-8") != new:
        write_text(config_path, new)
    pdf = run_snakemake(config_path, config=cfg, workdir=out, cores=args.cores, verbose=args.verbose)
    if pdf is not None:
        print(pdf)
    return 0
