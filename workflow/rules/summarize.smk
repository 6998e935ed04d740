# Tables, costs and the gallery: everything the report reads (it regenerates from results/ alone).
SUMMARY_FILES = ["per_joint.csv", "curves.csv", "ablations.csv", "training.csv", "variants.csv", "seeds.csv",
                  "paired.csv", "paired_pooled.csv", "costs.csv", "gallery.h5"]


rule summarize:
    input:
        metrics=lambda w: runs_of(w.dataset, "results", "metrics.json"),
        logs=lambda w: runs_of(w.dataset, "models", "log.csv"),
        # the gallery crops people out of the split the predictions were made on
        predictions=lambda w: runs_of(w.dataset, "results", "predictions.h5"),
        valid="data/processed/{dataset}/valid.h5",
        # ...and runs every model on the five real MPII images shipped with hgbench
        checkpoints=lambda w: runs_of(w.dataset, "models", "model.pt"),
    output:
        expand("results/summary/{{dataset}}/{table}", table=SUMMARY_FILES),
    params:
        profile=PARAMS_FILE,
        section=section("experiments", "variants"),
    conda:
        "../envs/hgbench.yaml"
    log:
        "logs/summarize/{dataset}.log",
    shell:
        "hgbench summarize --params {params.profile:q} --dataset {wildcards.dataset} --results results "
        "--models models --out results/summary/{wildcards.dataset} --data data/processed/{wildcards.dataset} "
        "--benchmarks benchmarks > {log} 2>&1"
