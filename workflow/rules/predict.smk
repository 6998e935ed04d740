rule predict:
    input:
        model=f"{MODELS}/{{dataset}}/{{variant}}/s{{seed}}/model.pt",
        valid=f"{PROCESSED}/{{dataset}}/valid.h5",
        # the five real photographs of prepare_samples, for the report's gallery: one more split
        # in the same job (one model load)
        samples=f"{PROCESSED}/{{dataset}}/samples.h5",
    output:
        predictions=f"{RESULTS}/{{dataset}}/{{variant}}/s{{seed}}/predictions.h5",
        samples=f"{RESULTS}/{{dataset}}/{{variant}}/s{{seed}}/samples_predictions.h5",
    log:
        f"{LOGS}/predict/{{dataset}}/{{variant}}/s{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/predict/{{dataset}}/{{variant}}/s{{seed}}.tsv"
    conda:
        "../envs/hgbench.yaml"
    threads: TRAIN["threads"]
    resources:
        gpu=GPUS_PER_JOB,
        runtime=runtime_of(predict_runtime),
        mem_mb=mem_mb_of(predict_mem_mb),
    params:
        profile=PARAMS_FILE,
        section=section("predict"),
    shell:
        "hgbench predict --params {params.profile:q} --checkpoint {input.model} "
        "--data {input.valid} {input.samples} --out {output.predictions} {output.samples} > {log} 2>&1"
