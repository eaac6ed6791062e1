# predict[model, shard] -> detections[model] -> model grades.


rule predict:
    input:
        cases=rules.intake.output.cases,
        eligibility=rules.eligibility.output.table,
        quality=rules.merge_quality.output,
        spec=model_files,
    output:
        f"{RESULTS}/predictions/{{model}}/shard-{{shard}}-of-{N_SHARDS}.parquet",
    params:
        protocol=PROTOCOL,
        protocol_values=PROTOCOL_DIGEST["predict"],
        entry=lambda wc: json.dumps(model_entry(wc.model), sort_keys=True),
        batch_size=config.get("batch_size", 4),
        n_shards=N_SHARDS,
    threads: 1
    resources:
        **resources_of("predict"),
        gpu=lambda wc: int(model_on_gpu(wc.model)),
    benchmark:
        f"{RESULTS}/benchmarks/predict-{{model}}-{{shard}}.tsv"
    log:
        f"{RESULTS}/logs/predict-{{model}}-{{shard}}.log",
    conda:
        "../envs/study.yaml"
    shell:
        "study step predict protocol={params.protocol:q} cases={input.cases:q}"
        " eligibility={input.eligibility:q} quality={input.quality:q} model={params.entry:q}"
        " shard={wildcards.shard} n_shards={params.n_shards}"
        " batch_size={params.batch_size} threads={threads} out={output:q} 2> {log:q}"


rule merge_detections:
    input:
        shards=expand(f"{RESULTS}/predictions/{{{{model}}}}/shard-{{shard}}-of-{N_SHARDS}.parquet", shard=SHARDS),
        ground_truth=rules.intake.output.ground_truth,
        cases=rules.intake.output.cases,
        spec=model_files,
    output:
        table=f"{RESULTS}/detections/{{model}}.parquet",
        coco=f"{RESULTS}/detections/{{model}}.coco.json",
        meta=f"{RESULTS}/detections/{{model}}.meta.json",
    params:
        entry=lambda wc: json.dumps(model_entry(wc.model), sort_keys=True),
        shards=lambda wc, input: ",".join(input.shards),
    resources:
        **resources_of("merge_detections"),
    benchmark:
        f"{RESULTS}/benchmarks/merge_detections-{{model}}.tsv"
    log:
        f"{RESULTS}/logs/merge-{{model}}.log",
    conda:
        "../envs/study.yaml"
    shell:
        "study step merge shards={params.shards:q} model={params.entry:q}"
        " ground_truth={input.ground_truth:q} cases={input.cases:q} out_table={output.table:q}"
        " out_coco={output.coco:q} out_meta={output.meta:q} 2> {log:q}"


rule grade_model:
    input:
        detections=rules.merge_detections.output.table,
        eligibility=rules.eligibility.output.table,
    output:
        f"{RESULTS}/grades/{{model}}.parquet",
    params:
        protocol=PROTOCOL,
        protocol_values=PROTOCOL_DIGEST["grade"],
    resources:
        **resources_of("grade_model"),
    group:
        "evaluate"
    benchmark:
        f"{RESULTS}/benchmarks/grade_model-{{model}}.tsv"
    log:
        f"{RESULTS}/logs/grade-{{model}}.log",
    conda:
        "../envs/study.yaml"
    shell:
        "study step grade protocol={params.protocol:q} detections={input.detections:q}"
        " eligibility={input.eligibility:q} out={output:q} 2> {log:q}"
