# intake -> quality -> eligibility; reference grades; readings.


if SYNTH:

    rule synth:
        output:
            manifest=COHORT["manifest"],
            # with cohort.annotators the config names no annotations / reference: synth writes them anyway
            annotations=COHORT.get("annotations", os.path.join(COHORT_DIR, "annotations.json")),
            reference=COHORT.get("reference", os.path.join(COHORT_DIR, "reference.csv")),
            readings=COHORT.get("readings", os.path.join(COHORT_DIR, "readings.csv")),
            images=directory(COHORT["image_root"]),
            annotators=annotator_files() if SYNTH.get("annotators") else [],
        params:
            cases=SYNTH["cases"],
            seed=SYNTH["seed"],
            rho=SYNTH.get("patient_correlation", 0),
            aided=" --aided-session" if SYNTH.get("aided_session") else "",
            annotators=(f" --annotators {SYNTH['annotators']} --annotator-noise {SYNTH.get('annotator_noise', 0.1)}"
                        if SYNTH.get("annotators") else ""),
            out=lambda wc, output: os.path.dirname(output.manifest) or ".",
        log:
            f"{RESULTS}/logs/synth.log",
        conda:
            "../envs/study.yaml"
        shell:
            "study synth --cases {params.cases} --seed {params.seed} --patient-correlation {params.rho}{params.aided}{params.annotators} --out {params.out:q} 2> {log:q}"


if ANNOTATORS:

    rule fuse_reference:
        input:
            manifest=COHORT["manifest"],
            files=annotator_files(),
        output:
            annotations=f"{FUSED}/annotations.json",
            reference=f"{FUSED}/reference.csv",
            disagreements=f"{FUSED}/disagreements.csv",
            record=f"{FUSED}/annotators.json",
        params:
            protocol=PROTOCOL,
            protocol_values=PROTOCOL_DIGEST["fuse_reference"],
            image_root=COHORT["image_root"],
            annotators=json.dumps(ANNOTATORS, sort_keys=True),
        resources:
            **resources_of("fuse_reference"),
        benchmark:
            f"{RESULTS}/benchmarks/fuse_reference.tsv"
        log:
            f"{RESULTS}/logs/fuse-reference.log",
        conda:
            "../envs/study.yaml"
        shell:
            "study step fuse_reference protocol={params.protocol:q} annotators={params.annotators:q}"
            " manifest={input.manifest:q} image_root={params.image_root:q}"
            " out_annotations={output.annotations:q} out_reference={output.reference:q}"
            " out_disagreements={output.disagreements:q} out_record={output.record:q} 2> {log:q}"


rule probe_images:
    input:
        manifest=COHORT["manifest"],
    output:
        f"{RESULTS}/images/probe-{{shard}}-of-{N_SHARDS}.parquet",
    params:
        image_root=COHORT["image_root"],
        n_shards=N_SHARDS,
    resources:
        **resources_of("probe_images"),
    benchmark:
        f"{RESULTS}/benchmarks/probe_images-{{shard}}.tsv"
    log:
        f"{RESULTS}/logs/probe-images-{{shard}}.log",
    conda:
        "../envs/study.yaml"
    shell:
        "study step probe_images manifest={input.manifest:q} image_root={params.image_root:q}"
        " shard={wildcards.shard} n_shards={params.n_shards} out={output:q} 2> {log:q}"


rule intake:
    input:
        manifest=COHORT["manifest"],
        annotations=reference_input("annotations"),
        probes=expand(f"{RESULTS}/images/probe-{{shard}}-of-{N_SHARDS}.parquet", shard=SHARDS),
    output:
        cases=f"{RESULTS}/cases.parquet",
        ground_truth=f"{RESULTS}/ground_truth.json",
    params:
        protocol=PROTOCOL,
        protocol_values=PROTOCOL_DIGEST["intake"],
        image_root=COHORT["image_root"],
        probes=lambda wc, input: ",".join(input.probes),
    resources:
        **resources_of("intake"),
    benchmark:
        f"{RESULTS}/benchmarks/intake.tsv"
    log:
        f"{RESULTS}/logs/intake.log",
    conda:
        "../envs/study.yaml"
    shell:
        "study step intake protocol={params.protocol:q} manifest={input.manifest:q}"
        " image_root={params.image_root:q} annotations={input.annotations:q} probes={params.probes:q}"
        " out_cases={output.cases:q} out_ground_truth={output.ground_truth:q} 2> {log:q}"


rule quality:
    input:
        cases=rules.intake.output.cases,
    output:
        f"{RESULTS}/quality/shard-{{shard}}-of-{N_SHARDS}.parquet",
    params:
        protocol=PROTOCOL,
        protocol_values=PROTOCOL_DIGEST["quality"],
        n_shards=N_SHARDS,
    threads: 1
    resources:
        **resources_of("quality"),
    benchmark:
        f"{RESULTS}/benchmarks/quality-{{shard}}.tsv"
    log:
        f"{RESULTS}/logs/quality-{{shard}}.log",
    conda:
        "../envs/study.yaml"
    shell:
        "study step quality protocol={params.protocol:q} cases={input.cases:q} shard={wildcards.shard}"
        " n_shards={params.n_shards} workers={threads} out={output:q} 2> {log:q}"


rule merge_quality:
    input:
        cases=rules.intake.output.cases,
        shards=expand(f"{RESULTS}/quality/shard-{{shard}}-of-{N_SHARDS}.parquet", shard=SHARDS),
    output:
        f"{RESULTS}/quality.parquet",
    params:
        shards=lambda wc, input: ",".join(input.shards),
    resources:
        **resources_of("merge_quality"),
    benchmark:
        f"{RESULTS}/benchmarks/merge_quality.tsv"
    log:
        f"{RESULTS}/logs/merge-quality.log",
    conda:
        "../envs/study.yaml"
    shell:
        "study step merge_quality cases={input.cases:q} shards={params.shards:q} out={output:q} 2> {log:q}"


rule eligibility:
    input:
        cases=rules.intake.output.cases,
        quality=rules.merge_quality.output,
    output:
        table=f"{RESULTS}/eligibility.parquet",
        flow=f"{RESULTS}/flow-cases.json",
    params:
        protocol=PROTOCOL,
        protocol_values=PROTOCOL_DIGEST["eligibility"],
        models=",".join(MODELS),
    resources:
        **resources_of("eligibility"),
    benchmark:
        f"{RESULTS}/benchmarks/eligibility.tsv"
    log:
        f"{RESULTS}/logs/eligibility.log",
    conda:
        "../envs/study.yaml"
    shell:
        "study step eligibility protocol={params.protocol:q} cases={input.cases:q}"
        " quality={input.quality:q} models={params.models:q}"
        " out_table={output.table:q} out_flow={output.flow:q} 2> {log:q}"


rule reference:
    input:
        cases=rules.intake.output.cases,
        ground_truth=rules.intake.output.ground_truth,
        reference=reference_input("reference"),
    output:
        f"{RESULTS}/reference.parquet",
    params:
        protocol=PROTOCOL,
        protocol_values=PROTOCOL_DIGEST["reference"],
    resources:
        **resources_of("reference"),
    benchmark:
        f"{RESULTS}/benchmarks/reference.tsv"
    log:
        f"{RESULTS}/logs/reference.log",
    conda:
        "../envs/study.yaml"
    shell:
        "study step reference protocol={params.protocol:q} cases={input.cases:q}"
        " ground_truth={input.ground_truth:q} reference={input.reference:q} out={output:q} 2> {log:q}"


rule readings:
    input:
        cases=rules.intake.output.cases,
        eligibility=rules.eligibility.output.table,
        cases_flow=rules.eligibility.output.flow,
        readings=optional_input("readings"),
    output:
        readings=f"{RESULTS}/readings.parquet",
        readers=f"{RESULTS}/readers.json",
        flow=f"{RESULTS}/flow.json",
    params:
        protocol=PROTOCOL,
        protocol_values=PROTOCOL_DIGEST["readings"],
        readings_state=readings_state(),
    resources:
        **resources_of("readings"),
    benchmark:
        f"{RESULTS}/benchmarks/readings.tsv"
    log:
        f"{RESULTS}/logs/readings.log",
    conda:
        "../envs/study.yaml"
    shell:
        "study step readings protocol={params.protocol:q} cases={input.cases:q}"
        " eligibility={input.eligibility:q} cases_flow={input.cases_flow:q} readings={input.readings:q}"
        " out={output.readings:q} out_readers={output.readers:q} out_flow={output.flow:q} 2> {log:q}"
