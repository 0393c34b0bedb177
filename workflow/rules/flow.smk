# Rules for the flow stage: TV-L1 (or DIS) optical flow of every video of a frames shard.
#
# flow: one job per shard, results/frames/{shard}.h5 -> results/flow/{shard}.h5
# (a video of n frames gets n - 1 fields, field t = motion from frame t to t + 1;
# clipped to +-flow.bound, uint8-quantized or float16; provenance attributes hold the
# backend and every parameter). Backend, device and TV-L1 parameters: config `flow:`.


rule flow:
    input:
        frames="results/frames/{shard}.h5",
    output:
        "results/flow/{shard}.h5",
    log:
        "logs/flow/{shard}.log",
    benchmark:
        "benchmarks/flow/{shard}.tsv"
    # the motion stream, and so every fusion cell, waits for every shard's flow: they take both
    # cores before the appearance stream (in the run at f3ee23f they ran one at a time beside it,
    # and the motion stream started at 417 s instead of about 200 s)
    priority: 25
    conda:
        "../envs/flow.yaml"
    threads: 1  # a job keeps about one core busy (load 112-124% with 2 threads): two shards side by side
    resources:
        mem_mb=4000,
        runtime=120,
        gpu=1 if config["flow"].get("backend", "torch") == "torch" else 0,
    params:
        cfg=section("flow"),
        code=code_hash("flow"),
    shell:
        "twostream flow --params {params.cfg:q} --frames {input.frames} --out {output}"
        " --threads {threads} > {log} 2>&1"
