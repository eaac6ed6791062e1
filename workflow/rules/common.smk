# Shared values: results folder, cohort files, models and shards, read once from the config.
import json
import os

RESULTS = config.get("results_dir", f"results/{config['study']}").rstrip("/")
COHORT = config["cohort"]
PROTOCOL = config["protocol"]
MODELS = [m["id"] for m in config["models"]]
N_SHARDS = int(config.get("shards", 2))
SHARDS = list(range(N_SHARDS))
SYNTH = COHORT.get("synth")
COHORT_DIR = os.path.dirname(COHORT["manifest"]) or "."

# Steps do not take the protocol file as an input: each rule gets the digest of the protocol
# values its step reads as a param, so it re-runs when those change and only then
# (study/rule_params.py; the steps read the protocol through a view refusing undeclared fields).
from study.rule_params import protocol_digests

PROTOCOL_DIGEST = protocol_digests(PROTOCOL)

# Cluster resources from the cohort's size (study/resources.py); more on a retry (attempt).
from study.resources import count_cases, rule_resources

N_CASES = count_cases(COHORT["manifest"], default=int(SYNTH["cases"]) if SYNTH else 0)


def resources_of(step):
    """``mem_mb`` and ``runtime`` of a rule's jobs, as callables of the attempt number."""
    return {
        key: (lambda wc, attempt, key=key: rule_resources(step, n_cases=N_CASES, n_shards=N_SHARDS,
                                                           attempt=attempt)[key])
        for key in ("mem_mb", "runtime")
    }


def model_on_gpu(model_id):
    """Whether the model runs on a CUDA device (its config entry's or spec file's ``device``)."""
    import yaml

    entry = model_entry(model_id)
    device = entry.get("device")
    if device is None and entry.get("spec") and os.path.isfile(entry["spec"]):
        with open(entry["spec"], encoding="utf-8") as f:
            device = (yaml.safe_load(f) or {}).get("device")
    return str(device or "cpu").startswith("cuda")


# Trivial steps run in the main Snakemake process, never as a cluster job.
localrules:
    all,
    merge_quality,
    readings,


wildcard_constraints:
    model="|".join(MODELS),
    shard=r"\d+",


def optional_input(key):
    """A cohort file the config names, or nothing."""
    path = COHORT.get(key)
    return [path] if path else []


#: several annotators' files: the fuse_reference rule builds the study's annotations and reference from them
ANNOTATORS = COHORT.get("annotators") or []
FUSED = f"{RESULTS}/reference-standard"


def reference_input(key):
    """The annotations / reference file intake and the reference step read: the fused one when the
    config names several annotators (rule fuse_reference), else the cohort's file, if any."""
    if ANNOTATORS:
        return [f"{FUSED}/annotations.json" if key == "annotations" else f"{FUSED}/reference.csv"]
    return optional_input(key)


def annotator_files():
    """Every annotator's files (annotations, grades), so editing one re-runs the fusion."""
    return [a[k] for a in ANNOTATORS for k in ("annotations", "grades") if a.get(k)]


def model_entry(model_id):
    return next(m for m in config["models"] if m["id"] == model_id)


def model_files(wildcards):
    """The model spec file (when the entry names one) and its card's training-patients file, so
    editing either re-runs prediction (and the check of training patients against the cohort)."""
    from study.model_card import card_input_files

    entry = model_entry(wildcards.model)
    spec = entry.get("spec")
    return ([spec] if spec else []) + card_input_files(entry)


def readings_state():
    """The state of a reading database (its audit table's last entry): new or amended answers
    change it and so re-run the steps that read the readings, even while SQLite still holds
    them in its write-ahead log and the database file's time has not changed. "" for a CSV."""
    path = COHORT.get("readings")
    if not path or not path.lower().endswith((".sqlite", ".db")) or not os.path.exists(path):
        return ""
    import sqlite3

    con = sqlite3.connect(path, timeout=10)
    try:
        n, last = con.execute("SELECT COUNT(*), MAX(id) FROM audit").fetchone()
    except sqlite3.DatabaseError:
        return ""  # not a reading database: the readings step says so
    finally:
        con.close()
    return f"audit entries {n}, last {last}"


def _plan_lock(wildcards):
    """The plan's lock record when `study lock` wrote one (a new or changed lock re-runs the decisions)."""
    lock = os.path.join(RESULTS, "plan-lock.json")
    return [lock] if os.path.exists(lock) else []
