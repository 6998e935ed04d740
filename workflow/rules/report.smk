# reports/<profile>/index.html is this profile's report; `hgbench report` also rewrites the
# landing page reports/index.html, which links every profile's report found in reports/ (it
# describes what is on disk, so it is no output of any one profile).
rule report:
    input:
        expand(f"{RESULTS}/summary/{{dataset}}/{{table}}", dataset=sorted(PARAMS.datasets), table=SUMMARY_FILES),
    output:
        html=f"{REPORTS}/index.html",
        figures=directory(f"{REPORTS}/figures"),
    params:
        profile=PARAMS_FILE,
    conda:
        "../envs/hgbench.yaml"
    log:
        f"{LOGS}/report.log",
    shell:
        f"hgbench report --params {{params.profile:q}} --results {RESULTS} --out {{output.html}} "
        "--index reports/index.html > {log} 2>&1"
