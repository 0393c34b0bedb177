# Rules for the fusion stage.
#
# train_fusion: one job per cell of the fusion grid (fusion.grid: methods x positions x
# seeds, plus the `extra` entries) -> results/models/fusion-{method}-{position}-s{seed}/
# checkpoint.pt and history.csv, initialised from the two trained streams and fine-tuned
# (late fusion trains nothing). Its params are the cell (the wildcards) and the shared
# fusion.train settings only, so adding a grid entry schedules only the new cells (their
# training and evaluation) and the table. Each cell is evaluated by the `evaluate` rule.
# ablation_table: every evaluated model (streams + grid) -> results/ablation/accuracy.csv,
# heatmap.png, groups.png and findings.md.


rule train_fusion:
    input:
        rgb="results/models/rgb/checkpoint.pt",
        flow="results/models/flow/checkpoint.pt",
        frames=expand("results/frames/{shard}.h5", shard=shards()),
        flows=expand("results/flow/{shard}.h5", shard=shards()),
    output:
        checkpoint="results/models/fusion-{method}-{position}-s{seed}/checkpoint.pt",
        history="results/models/fusion-{method}-{position}-s{seed}/history.csv",
    log:
        "logs/train_fusion/fusion-{method}-{position}-s{seed}.log",
    benchmark:
        "benchmarks/train_fusion/fusion-{method}-{position}-s{seed}.tsv"
    wildcard_constraints:
        method=grid.METHOD_PATTERN,
        position=grid.POSITION_PATTERN,
        seed=grid.SEED_PATTERN,
    # the longest jobs first; evaluations and pictures fill the gaps
    priority: 10
    conda:
        "../envs/torch.yaml"
    threads: lambda wc: job_threads(config["fusion"]["train"].get("workers"))
    resources:
        mem_mb=6000,
        runtime=60,
        gpu=1,
    params:
        cfg=fusion_train_section,
        code=code_hash("train-fusion"),
        out=lambda wc: f"results/models/{grid.model_name(wc.method, wc.position, int(wc.seed))}",
        launch=launcher,
    shell:
        "{params.launch} train-fusion --method {wildcards.method} --position {wildcards.position:q}"
        " --seed {wildcards.seed} --rgb-checkpoint {input.rgb} --flow-checkpoint {input.flow}"
        " --frames {input.frames} --flow {input.flows} --out {params.out}"
        " --params {params.cfg:q} --threads {threads} > {log} 2>&1"


rule ablation_table:
    input:
        scores=expand("results/eval/{model}/scores.h5", model=ablation_models()),
        val_scores=expand("results/eval/{model}/val_scores.h5", model=ablation_models()),
        checkpoints=expand(
            "results/models/{model}/checkpoint.pt", model=ablation_models()
        ),
        histories=expand("results/models/{model}/history.csv", model=ablation_models()),
        classes=classes_csv(),
    output:
        csv="results/ablation/accuracy.csv",
        heatmap=report(
            "results/ablation/heatmap.png",
            caption="../report/ablation_heatmap.rst",
            category="Fusion ablation",
        ),
        groups=report(
            "results/ablation/groups.png",
            caption="../report/ablation_groups.rst",
            category="Fusion ablation",
        ),
        findings="results/ablation/findings.md",
    log:
        "logs/ablation_table.log",
    benchmark:
        "benchmarks/ablation_table.tsv"
    conda:
        "../envs/summary.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        cfg=json.dumps((config.get("fusion") or {}).get("table") or {}, sort_keys=True),
        code=code_hash("ablation"),
        models=" ".join(ablation_models()),
        classes=lambda wc, input: f"--classes {input.classes}" if input.classes else "",
    shell:
        "twostream ablation --params {params.cfg:q} --models {params.models}"
        " --eval-root results/eval --models-root results/models {params.classes}"
        " --out results/ablation > {log} 2>&1"
