# Rules for the train stage.
#
# train_stream: one job per stream (rgb = appearance, flow = motion) ->
# results/models/{stream}/checkpoint.pt and history.csv. The appearance stream reads the
# frames shards, the motion stream the flow shards. params.cfg is the `train:` section with
# that stream's overrides (train.rgb / train.flow) merged in, so editing one stream's
# settings reruns only that stream. The job writes results/models/{stream}/resume.pt
# after every epoch (not an output, so Snakemake keeps it when a killed job is rerun):
# rerunning after a crash or SIGKILL continues from the last finished epoch.


rule train_stream:
    input:
        shards=stream_shards,
    output:
        checkpoint="results/models/{stream}/checkpoint.pt",
        history="results/models/{stream}/history.csv",
    log:
        "logs/train/{stream}.log",
    benchmark:
        "benchmarks/train/{stream}.tsv"
    # the streams head the critical path: every fusion cell waits for both
    priority: 20
    conda:
        "../envs/torch.yaml"
    threads: lambda wc: stream_threads(wc.stream)
    resources:
        mem_mb=8000,
        runtime=240,
        gpu=1,
    params:
        cfg=lambda wc: train_section(wc.stream),
        code=code_hash("train"),
        shards_flag=lambda wc: f"--{grid.model_shards(wc.stream)[0]}",
        out=lambda wc: f"results/models/{wc.stream}",
        launch=launcher,
    shell:
        "{params.launch} train --stream {wildcards.stream} {params.shards_flag} {input.shards}"
        " --out {params.out} --params {params.cfg:q} --threads {threads}"
        " > {log} 2>&1"
