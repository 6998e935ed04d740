rule report:
    input:
        expand("results/summary/{dataset}/{table}", dataset=sorted(PARAMS.datasets), table=SUMMARY_FILES),
    output:
        html="reports/index.html",
        figures=directory("reports/figures"),
    params:
        profile=PARAMS_FILE,
    conda:
        "../envs/hgbench.yaml"
    log:
        "logs/report.log",
    shell:
        "hgbench report --params {params.profile:q} --results results --out {output.html} > {log} 2>&1"
