# collect every number into results.json, then figures and the PDF/HTML report.


rule collect:
    input:
        protocol=PROTOCOL,
        cases=rules.intake.output.cases,
        ground_truth=rules.intake.output.ground_truth,
        quality=rules.merge_quality.output,
        eligibility=rules.eligibility.output.table,
        flow=rules.readings.output.flow,
        reference=rules.reference.output,
        readings=rules.readings.output.readings,
        detection=expand(f"{RESULTS}/metrics/detection/{{model}}.json", model=MODELS),
        counting=expand(f"{RESULTS}/metrics/counting/{{model}}.json", model=MODELS),
        meta=expand(f"{RESULTS}/detections/{{model}}.meta.json", model=MODELS),
        # the errors block's detection-by-skin-type reads each model's per-detection flags
        flags=expand(f"{RESULTS}/metrics/detection/{{model}}.flags.npz", model=MODELS),
        grades=expand(f"{RESULTS}/grades/{{model}}.parquet", model=MODELS),
        agreement=rules.evaluate_agreement.output,
        mrmc=rules.evaluate_mrmc.output,
        decisions=rules.decide.output,
        sample_size=lambda wc: [p for p in [f"{RESULTS}/sample_size.json"] if os.path.exists(p)],
        annotators=[f"{FUSED}/annotators.json"] if ANNOTATORS else [],
    output:
        f"{RESULTS}/results.json",
    params:
        config=lambda wc: json.dumps(config, sort_keys=True),
        models=",".join(MODELS),
        results=lambda wc, output: os.path.dirname(output[0]) or ".",
    resources:
        **resources_of("collect"),
    group:
        "evaluate"
    benchmark:
        f"{RESULTS}/benchmarks/collect.tsv"
    log:
        f"{RESULTS}/logs/collect.log",
    conda:
        "../envs/study.yaml"
    shell:
        "study step collect config={params.config:q} results_dir={params.results:q}"
        " models={params.models:q} out={output:q} 2> {log:q}"


rule report:
    input:
        rules.collect.output,
    output:
        pdf=f"{RESULTS}/report.pdf",
        html=f"{RESULTS}/report.html",
    params:
        results=lambda wc, input: os.path.dirname(input[0]) or ".",
    resources:
        **resources_of("report"),
    group:
        "evaluate"
    benchmark:
        f"{RESULTS}/benchmarks/report.tsv"
    log:
        f"{RESULTS}/logs/report.log",
    conda:
        "../envs/study.yaml"
    shell:
        "study report {params.results:q} --out {output.pdf:q} 2> {log:q}"
