# Rules for the evaluate stage.
#
# evaluate: one job per trained model (rgb, flow, fusion-...) ->
# results/eval/{model}/scores.h5, metrics.json, confusion.png (test split: the final tables)
# and val_scores.h5, val_metrics.json (validation split: for choosing settings), with the
# test protocol of the `evaluate:` section. The model is rebuilt from its checkpoint, whatever its kind.
# Models named rgb read frames shards, flow flow shards, any other (fused) model both.
# Per-group accuracy needs <dataset root>/classes.csv (label, class_name, group): the
# synthetic dataset writes it; for other datasets it is used when present.


rule evaluate:
    input:
        unpack(eval_shards),
        checkpoint="results/models/{model}/checkpoint.pt",
        classes=classes_csv(),
    output:
        scores="results/eval/{model}/scores.h5",
        metrics="results/eval/{model}/metrics.json",
        val_scores="results/eval/{model}/val_scores.h5",
        val_metrics="results/eval/{model}/val_metrics.json",
        confusion=report(
            "results/eval/{model}/confusion.png",
            caption="../report/confusion.rst",
            category="Evaluation",
            subcategory="{model}",
        ),
    log:
        "logs/evaluate/{model}.log",
    benchmark:
        "benchmarks/evaluate/{model}.tsv"
    wildcard_constraints:
        model=r"[A-Za-z0-9_.+-]+",
    conda:
        "../envs/torch.yaml"
    threads: lambda wc: job_threads(config["evaluate"].get("workers"))
    resources:
        mem_mb=8000,
        runtime=60,
        gpu=1,
    params:
        cfg=section("evaluate"),
        code=code_hash("evaluate"),
        shards=lambda wc, input: " ".join(
            f"--{k} " + " ".join(input[k])
            for k in ("frames", "flow")
            if k in input.keys()
        ),
        classes=lambda wc, input: f"--classes {input.classes}" if input.classes else "",
        out=lambda wc: f"results/eval/{wc.model}",
    shell:
        "twostream evaluate --checkpoint {input.checkpoint} {params.shards} {params.classes}"
        " --out {params.out} --params {params.cfg:q} --threads {threads}"
        " > {log} 2>&1"
