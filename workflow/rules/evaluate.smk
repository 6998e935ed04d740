rule evaluate:
    input:
        predictions="results/{dataset}/{variant}/s{seed}/predictions.h5",
        valid="data/processed/{dataset}/valid.h5",
    output:
        "results/{dataset}/{variant}/s{seed}/metrics.json",
    params:
        protocol=PARAMS.evaluate.protocol,
    conda:
        "../envs/hgbench.yaml"
    log:
        "logs/evaluate/{dataset}/{variant}/s{seed}.log",
    shell:
        "hgbench evaluate --ground-truth {input.valid} --predictions {input.predictions} "
        "--protocol {params.protocol} --out {output} > {log} 2>&1"
