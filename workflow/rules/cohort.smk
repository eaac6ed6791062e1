# intake -> quality -> eligibility; reference grades; readings.


if SYNTH:

    rule synth:
        output:
            manifest=COHORT["manifest"],
            annotations=COHORT["annotations"],
            reference=COHORT["reference"],
            readings=COHORT["readings"],
            images=directory(COHORT["image_root"]),
        params:
            cases=SYNTH["cases"],
            seed=SYNTH["seed"],
            rho=SYNTH.get("patient_correlation", 0),
            out=lambda wc, output: os.path.dirname(output.manifest) or ".",
        log:
            f"{RESULTS}/logs/synth.log",
        conda:
            "../envs/study.yaml"
        shell:
            "study synth --cases {params.cases} --seed {params.seed} --patient-correlation {params.rho} --out {params.out:q} 2> {log:q}"


rule intake:
    input:
        protocol=PROTOCOL,
        manifest=COHORT["manifest"],
        annotations=optional_input("annotations"),
    output:
        cases=f"{RESULTS}/cases.parquet",
        ground_truth=f"{RESULTS}/ground_truth.json",
    params:
        image_root=COHORT["image_root"],
    log:
        f"{RESULTS}/logs/intake.log",
    conda:
        "../envs/study.yaml"
    shell:
        "study step intake protocol={input.protocol:q} manifest={input.manifest:q}"
        " image_root={params.image_root:q} annotations={input.annotations:q}"
        " out_cases={output.cases:q} out_ground_truth={output.ground_truth:q} 2> {log:q}"


rule quality:
    input:
        protocol=PROTOCOL,
        cases=rules.intake.output.cases,
    output:
        f"{RESULTS}/quality.parquet",
    threads: 2
    log:
        f"{RESULTS}/logs/quality.log",
    conda:
        "../envs/study.yaml"
    shell:
        "study step quality protocol={input.protocol:q} cases={input.cases:q}"
        " workers={threads} out={output:q} 2> {log:q}"


rule eligibility:
    input:
        protocol=PROTOCOL,
        cases=rules.intake.output.cases,
        quality=rules.quality.output,
        readings=optional_input("readings"),
    output:
        table=f"{RESULTS}/eligibility.parquet",
        flow=f"{RESULTS}/flow.json",
    params:
        models=",".join(MODELS),
        readings_state=readings_state(),
    log:
        f"{RESULTS}/logs/eligibility.log",
    conda:
        "../envs/study.yaml"
    shell:
        "study step eligibility protocol={input.protocol:q} cases={input.cases:q}"
        " quality={input.quality:q} readings={input.readings:q} models={params.models:q}"
        " out_table={output.table:q} out_flow={output.flow:q} 2> {log:q}"


rule reference:
    input:
        protocol=PROTOCOL,
        cases=rules.intake.output.cases,
        ground_truth=rules.intake.output.ground_truth,
        reference=optional_input("reference"),
    output:
        f"{RESULTS}/reference.parquet",
    log:
        f"{RESULTS}/logs/reference.log",
    conda:
        "../envs/study.yaml"
    shell:
        "study step reference protocol={input.protocol:q} cases={input.cases:q}"
        " ground_truth={input.ground_truth:q} reference={input.reference:q} out={output:q} 2> {log:q}"


rule readings:
    input:
        protocol=PROTOCOL,
        cases=rules.intake.output.cases,
        readings=optional_input("readings"),
    output:
        readings=f"{RESULTS}/readings.parquet",
        readers=f"{RESULTS}/readers.json",
    params:
        readings_state=readings_state(),
    log:
        f"{RESULTS}/logs/readings.log",
    conda:
        "../envs/study.yaml"
    shell:
        "study step readings protocol={input.protocol:q} cases={input.cases:q}"
        " readings={input.readings:q} out={output.readings:q} out_readers={output.readers:q} 2> {log:q}"
