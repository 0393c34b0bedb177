# Rules of the planted quirk (the paper's fourth finding; synthetic datasets, quirk.enabled).
#
# quirk_data: the frames shards -> results/quirk/frames.h5 (an overlay shard: share of the
# quirked class's training clips with the mark pasted in; listed after the dataset's shards
# its clips replace theirs), results/quirk/cued_test.h5 (other classes' test clips with the
# mark) and results/quirk/quirk.json (the ground truth). Decode and flow are shared.
# train_quirk: the appearance stream trained on the quirked data with the rgb stream's
# settings (same seed and schedule as results/models/rgb, the clean model).
# quirk: both models -> results/quirk/quirk.csv (accuracy, confusion, shortcut rate),
# verification.csv (+ _runs), summary.csv, findings.md, montage.png, visualizations.h5.

if quirk_enabled():

    rule quirk_data:
        input:
            frames=expand("results/frames/{shard}.h5", shard=shards()),
        output:
            overlay="results/quirk/frames.h5",
            cued="results/quirk/cued_test.h5",
            truth="results/quirk/quirk.json",
        log:
            "logs/quirk/data.log",
        benchmark:
            "benchmarks/quirk/data.tsv"
        conda:
            "../envs/data.yaml"
        threads: 1
        resources:
            mem_mb=2000,
            runtime=30,
        params:
            cfg=quirk_params(),
            code=code_hash("quirk"),
        shell:
            "twostream quirk --plant --frames {input.frames} --overlay {output.overlay}"
            " --cued {output.cued} --truth {output.truth} --params {params.cfg:q} > {log} 2>&1"

    rule train_quirk:
        input:
            frames=expand("results/frames/{shard}.h5", shard=shards()),
            overlay="results/quirk/frames.h5",
        output:
            checkpoint="results/quirk/model/checkpoint.pt",
            history="results/quirk/model/history.csv",
        log:
            "logs/quirk/train.log",
        benchmark:
            "benchmarks/quirk/train.tsv"
        conda:
            "../envs/torch.yaml"
        threads: lambda wc: stream_threads("rgb")
        resources:
            mem_mb=8000,
            runtime=240,
            gpu=1,
        params:
            cfg=train_section("rgb"),
            code=code_hash("train"),
            out=lambda wc, output: os.path.dirname(output.checkpoint),
        shell:
            "twostream train --stream rgb --frames {input.frames} {input.overlay}"
            " --out {params.out} --params {params.cfg:q} --threads {threads} > {log} 2>&1"

    rule quirk:
        input:
            frames=expand("results/frames/{shard}.h5", shard=shards()),
            overlay="results/quirk/frames.h5",
            cued="results/quirk/cued_test.h5",
            truth="results/quirk/quirk.json",
            quirked="results/quirk/model/checkpoint.pt",
            clean="results/models/rgb/checkpoint.pt",
            classes=classes_csv(),
        output:
            table="results/quirk/quirk.csv",
            verification="results/quirk/verification.csv",
            runs="results/quirk/verification_runs.csv",
            summary="results/quirk/summary.csv",
            findings="results/quirk/findings.md",
            images="results/quirk/visualizations.h5",
            montage=report(
                "results/quirk/montage.png",
                caption="../report/quirk_montage.rst",
                category="Quirk",
            ),
        log:
            "logs/quirk/analyse.log",
        benchmark:
            "benchmarks/quirk/analyse.tsv"
        conda:
            "../envs/torch.yaml"
        threads: 1
        resources:
            mem_mb=3000,
            runtime=30,
        params:
            cfg=quirk_params(),
            code=code_hash("quirk"),
            classes=lambda wc, input: (
                f"--classes {input.classes}" if input.classes else ""
            ),
            out=lambda wc, output: os.path.dirname(output.table),
        shell:
            "twostream quirk --frames {input.frames} --overlay {input.overlay} --cued {input.cued}"
            " --truth {input.truth} --quirked {input.quirked} --clean {input.clean} {params.classes}"
            " --out {params.out} --params {params.cfg:q} --threads {threads} > {log} 2>&1"
