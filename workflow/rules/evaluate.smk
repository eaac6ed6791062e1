# evaluate: detection, counting (per model), agreement and MRMC (models and readers together).


rule evaluate_detection:
    input:
        ground_truth=rules.intake.output.ground_truth,
        detections=rules.merge_detections.output.coco,
        cases=rules.intake.output.cases,
        eligibility=rules.eligibility.output.table,
    output:
        result=f"{RESULTS}/metrics/detection/{{model}}.json",
        flags=f"{RESULTS}/metrics/detection/{{model}}.flags.npz",
    params:
        protocol=PROTOCOL,
        protocol_values=PROTOCOL_DIGEST["evaluate_detection"],
    resources:
        **resources_of("evaluate_detection"),
    group:
        "evaluate"
    benchmark:
        f"{RESULTS}/benchmarks/evaluate_detection-{{model}}.tsv"
    log:
        f"{RESULTS}/logs/evaluate-detection-{{model}}.log",
    conda:
        "../envs/study.yaml"
    shell:
        "study step evaluate_detection protocol={params.protocol:q} ground_truth={input.ground_truth:q}"
        " detections={input.detections:q} cases={input.cases:q} eligibility={input.eligibility:q}"
        " out={output.result:q} flags={output.flags:q} 2> {log:q}"


rule evaluate_counting:
    input:
        reference=rules.reference.output,
        detections=rules.merge_detections.output.table,
        cases=rules.intake.output.cases,
        eligibility=rules.eligibility.output.table,
    output:
        f"{RESULTS}/metrics/counting/{{model}}.json",
    params:
        protocol=PROTOCOL,
        protocol_values=PROTOCOL_DIGEST["evaluate_counting"],
    resources:
        **resources_of("evaluate_counting"),
    group:
        "evaluate"
    benchmark:
        f"{RESULTS}/benchmarks/evaluate_counting-{{model}}.tsv"
    log:
        f"{RESULTS}/logs/evaluate-counting-{{model}}.log",
    conda:
        "../envs/study.yaml"
    shell:
        "study step evaluate_counting protocol={params.protocol:q} reference={input.reference:q}"
        " detections={input.detections:q} cases={input.cases:q} eligibility={input.eligibility:q}"
        " out={output:q} 2> {log:q}"


rule evaluate_agreement:
    input:
        reference=rules.reference.output,
        readings=rules.readings.output.readings,
        grades=expand(f"{RESULTS}/grades/{{model}}.parquet", model=MODELS),
        cases=rules.intake.output.cases,
        eligibility=rules.eligibility.output.table,
    output:
        f"{RESULTS}/metrics/agreement.json",
    params:
        protocol=PROTOCOL,
        protocol_values=PROTOCOL_DIGEST["evaluate_agreement"],
        grades=lambda wc, input: ",".join(input.grades),
    threads: 2
    resources:
        **resources_of("evaluate_agreement"),
    group:
        "evaluate"
    benchmark:
        f"{RESULTS}/benchmarks/evaluate_agreement.tsv"
    log:
        f"{RESULTS}/logs/evaluate-agreement.log",
    conda:
        "../envs/study.yaml"
    shell:
        "study step evaluate_agreement protocol={params.protocol:q} reference={input.reference:q}"
        " readings={input.readings:q} grades={params.grades:q} cases={input.cases:q}"
        " eligibility={input.eligibility:q} out={output:q} 2> {log:q}"


rule evaluate_mrmc:
    input:
        reference=rules.reference.output,
        readings=rules.readings.output.readings,
        grades=expand(f"{RESULTS}/grades/{{model}}.parquet", model=MODELS),
        cases=rules.intake.output.cases,
        eligibility=rules.eligibility.output.table,
    output:
        f"{RESULTS}/metrics/mrmc.json",
    params:
        protocol=PROTOCOL,
        protocol_values=PROTOCOL_DIGEST["evaluate_mrmc"],
        grades=lambda wc, input: ",".join(input.grades),
    resources:
        **resources_of("evaluate_mrmc"),
    group:
        "evaluate"
    benchmark:
        f"{RESULTS}/benchmarks/evaluate_mrmc.tsv"
    log:
        f"{RESULTS}/logs/evaluate-mrmc.log",
    conda:
        "../envs/study.yaml"
    shell:
        "study step evaluate_mrmc protocol={params.protocol:q} reference={input.reference:q}"
        " readings={input.readings:q} grades={params.grades:q} eligibility={input.eligibility:q}"
        " cases={input.cases:q} out={output:q} 2> {log:q}"


rule decide:
    input:
        protocol=PROTOCOL,
        reference=rules.reference.output,
        readings=rules.readings.output.readings,
        grades=expand(f"{RESULTS}/grades/{{model}}.parquet", model=MODELS),
        cases=rules.intake.output.cases,
        eligibility=rules.eligibility.output.table,
        detection=expand(f"{RESULTS}/metrics/detection/{{model}}.json", model=MODELS),
        counting=expand(f"{RESULTS}/metrics/counting/{{model}}.json", model=MODELS),
        mrmc=rules.evaluate_mrmc.output,
        lock=_plan_lock,
    output:
        f"{RESULTS}/metrics/decisions.json",
    params:
        config=lambda wc: json.dumps(config, sort_keys=True),
        grades=lambda wc, input: ",".join(input.grades),
        detection=lambda wc, input: ",".join(input.detection),
        counting=lambda wc, input: ",".join(input.counting),
    resources:
        **resources_of("decide"),
    group:
        "evaluate"
    benchmark:
        f"{RESULTS}/benchmarks/decide.tsv"
    log:
        f"{RESULTS}/logs/decide.log",
    conda:
        "../envs/study.yaml"
    shell:
        "study step decide protocol={input.protocol:q} config={params.config:q} reference={input.reference:q}"
        " readings={input.readings:q} grades={params.grades:q} cases={input.cases:q}"
        " eligibility={input.eligibility:q} detection={params.detection:q} counting={params.counting:q}"
        " mrmc={input.mrmc:q} out={output:q} 2> {log:q}"
