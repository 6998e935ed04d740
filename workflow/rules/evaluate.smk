rule evaluate:
    input:
        predictions=f"{RESULTS}/{{dataset}}/{{variant}}/s{{seed}}/predictions.h5",
        valid=f"{PROCESSED}/{{dataset}}/valid.h5",
    output:
        # metrics.json: everything (per joint, per person, curves, CIs); the headline file: the
        # dozen numbers DVC shows per run (`dvc exp show`, `dvc metrics diff`), tracked by git.
        metrics=f"{RESULTS}/{{dataset}}/{{variant}}/s{{seed}}/metrics.json",
        headline=f"{METRICS}/{{dataset}}/{{variant}}/s{{seed}}.json",
        curve=f"{RESULTS}/{{dataset}}/{{variant}}/s{{seed}}/pck_curve.csv",
    params:
        protocol=PARAMS.evaluate.protocol,
    conda:
        "../envs/hgbench.yaml"
    log:
        f"{LOGS}/evaluate/{{dataset}}/{{variant}}/s{{seed}}.log",
    shell:
        "hgbench evaluate --ground-truth {input.valid} --predictions {input.predictions} "
        "--protocol {params.protocol} --out {output.metrics} --headline {output.headline} "
        "--curve {output.curve} > {log} 2>&1"
