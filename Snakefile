# Thin shim so that `snakemake` works from the repository root; the workflow lives in workflow/.
include: "workflow/Snakefile"
