rule predict:
    input:
        model="models/{dataset}/{variant}/s{seed}/model.pt",
        valid="data/processed/{dataset}/valid.h5",
    output:
        "results/{dataset}/{variant}/s{seed}/predictions.h5",
    params:
        profile=PARAMS_FILE,
        section=section("predict"),
    threads: PARAMS.train.threads
    resources:
        gpu=GPUS_PER_JOB,
    conda:
        "../envs/hgbench.yaml"
    log:
        "logs/predict/{dataset}/{variant}/s{seed}.log",
    benchmark:
        "benchmarks/predict/{dataset}/{variant}/s{seed}.tsv"
    shell:
        "hgbench predict --params {params.profile:q} --checkpoint {input.model} --data {input.valid} "
        "--out {output} > {log} 2>&1"
