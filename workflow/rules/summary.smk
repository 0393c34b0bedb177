rule plots:
    input:
        histories=lambda w: expand(
            "results/models/{model}/history.csv", model=trained_models()
        ),
        frames=expand("results/frames/{shard}.h5", shard=shards()),
        flow=expand("results/flow/{shard}.h5", shard=shards()),
    output:
        curves=report(
            "results/plots/training_curves.png",
            caption="../report/training_curves.rst",
            category="Training",
        ),
        flow=report(
            "results/plots/flow_examples.png",
            caption="../report/flow_examples.rst",
            category="Optical flow",
        ),
    log:
        "logs/plots.log",
    benchmark:
        "benchmarks/plots.tsv"
    conda:
        "../envs/summary.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        cfg=section("plots"),
        code=code_hash("plots"),
    shell:
        "twostream plots --params {params.cfg:q} --histories {input.histories}"
        " --frames {input.frames} --flow {input.flow}"
        " --curves {output.curves} --flow-examples {output.flow} > {log} 2>&1"
