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


wildcard_constraints:
    model="|".join(MODELS),
    shard=r"\d+",


def optional_input(key):
    """A cohort file the config names, or nothing."""
    path = COHORT.get(key)
    return [path] if path else []


def model_entry(model_id):
    return next(m for m in config["models"] if m["id"] == model_id)


def model_files(wildcards):
    """The model spec file (when the entry names one), so editing it re-runs prediction."""
    spec = model_entry(wildcards.model).get("spec")
    return [spec] if spec else []
