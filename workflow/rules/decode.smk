# Rules for the video index and the decode stage.
#
# index (a checkpoint): dataset -> results/index.csv (+ index.json, the dataset settings
# that the decode stage copies into each shard's provenance). Its inputs are the split
# files, so editing a split list reruns it; the synthetic dataset's come from `synthesize`.
# decode: one job per shard, results/frames/{shard}.h5 (+ {shard}.bad.csv, the videos
# skipped as bad when decode.on_bad_video is skip and the truncated ones kept). Its inputs are the index and the
# shard's own videos (known once the index exists).
# bad_videos: the per-shard lists gathered into results/frames/bad_videos.csv.


from twostream.datasets import split_files
from twostream.decode import shard_video_paths


checkpoint index:
    input:
        lambda wc: split_files(config["dataset"]),
    output:
        csv="results/index.csv",
        meta="results/index.json",
    log:
        "logs/index.log",
    benchmark:
        "benchmarks/index.tsv"
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        cfg=section("dataset"),
        code=code_hash("index"),
    shell:
        "twostream index --params {params.cfg:q} --out {output.csv} --meta {output.meta} > {log} 2>&1"


rule decode:
    input:
        index="results/index.csv",
        meta="results/index.json",
        videos=lambda wc: shard_video_paths(
            checkpoints.index.get().output.csv, config["decode"]["shards"], wc.shard
        ),
    output:
        frames="results/frames/{shard}.h5",
        bad="results/frames/{shard}.bad.csv",
    log:
        "logs/decode/{shard}.log",
    benchmark:
        "benchmarks/decode/{shard}.tsv"
    # every shard decoded (seconds each) before the flow jobs take the cores: otherwise the
    # last shard's decode, and so its flow, can wait behind the other shards' flows
    priority: 30
    conda:
        "../envs/data.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=120,
    params:
        cfg=section("decode"),
        code=code_hash("decode"),
    shell:
        "twostream decode --params {params.cfg:q} --index {input.index} --shard {wildcards.shard}"
        " --out {output.frames} --bad-list {output.bad} > {log} 2>&1"


rule bad_videos:
    input:
        expand("results/frames/{shard}.bad.csv", shard=shards()),
    output:
        "results/frames/bad_videos.csv",
    log:
        "logs/decode/bad_videos.log",
    benchmark:
        "benchmarks/decode/bad_videos.tsv"
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        code=code_hash("decode"),
    shell:
        "twostream decode --gather {output} {input} > {log} 2>&1"
