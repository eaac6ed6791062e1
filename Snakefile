# acne-study workflow: one rule per arrow of the data flow (docs/architecture.md).
#   snakemake --cores 2 --configfile config/demo.yaml
# There is no default config: pass --configfile. The `study` console script must be on PATH
# (activate .venv, or use `study run CONFIG`, which does both).
from snakemake.utils import min_version, validate

min_version("9.0")


validate(config, "config/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/cohort.smk"
include: "workflow/rules/predict.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        f"{RESULTS}/report.pdf",
        f"{RESULTS}/report.html",
        f"{RESULTS}/results.json",
    default_target: True
