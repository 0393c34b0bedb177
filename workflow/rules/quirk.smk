# Rules of the planted quirk (the paper's fourth finding; synthetic datasets, quirk.enabled).
#
# quirk_data: the frames shards -> results/quirk/frames.h5 (an overlay shard: share of the
# quirked class's training clips with the mark pasted in; listed after the dataset's shards
# its clips replace theirs), results/quirk/cued_test.h5 (other classes' test clips with the
# mark) and results/quirk/quirk.json (the ground truth). Decode and flow are shared.
# train_quirk: the appearance stream trained on the quirked data (role model) with the rgb
# stream's settings: results/quirk/model has the rgb stream's seed and schedule, and
# results/models/rgb is its clean model; each further seed of quirk.train_seeds trains both
# in results/quirk/seed-N/{model,clean}.
# quirk: one pair -> results/quirk[/seed-N]/quirk.csv (accuracy, confusion, shortcut rate),
# verification.csv (+ _runs), summary.csv, findings.md, montage.png, visualizations.h5.
# quirk_seeds: every pair's analysis -> results/quirk/seeds.csv, seeds.md (in how many
# training seeds the visualization shows the quirk).

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
            cfg=quirk_plant_params(),
            code=code_hash("quirk"),
        shell:
            "twostream quirk --plant --frames {input.frames} --overlay {output.overlay}"
            " --cued {output.cued} --truth {output.truth} --params {params.cfg:q} > {log} 2>&1"

    rule train_quirk:
        input:
            frames=quirk_train_inputs,
        output:
            checkpoint="results/{q}/{role}/checkpoint.pt",
            history="results/{q}/{role}/history.csv",
        log:
            "logs/{q}/train-{role}.log",
        benchmark:
            "benchmarks/{q}/train-{role}.tsv"
        wildcard_constraints:
            q=r"quirk(/seed-\d+)?",
            role="model|clean",
        conda:
            "../envs/torch.yaml"
        threads: lambda wc: stream_threads("rgb")
        resources:
            mem_mb=8000,
            runtime=240,
            gpu=1,
        params:
            cfg=quirk_train_params,
            code=code_hash("train"),
            out=lambda wc, output: os.path.dirname(output.checkpoint),
        shell:
            "twostream train --stream rgb --frames {input.frames}"
            " --out {params.out} --params {params.cfg:q} --threads {threads} > {log} 2>&1"

    rule quirk:
        input:
            frames=expand("results/frames/{shard}.h5", shard=shards()),
            overlay="results/quirk/frames.h5",
            cued="results/quirk/cued_test.h5",
            truth="results/quirk/quirk.json",
            quirked="results/{q}/model/checkpoint.pt",
            clean=quirk_clean_checkpoint,
            classes=classes_csv(),
        output:
            table="results/{q}/quirk.csv",
            verification="results/{q}/verification.csv",
            runs="results/{q}/verification_runs.csv",
            summary="results/{q}/summary.csv",
            findings="results/{q}/findings.md",
            images="results/{q}/visualizations.h5",
            montage=report(
                "results/{q}/montage.png",
                caption="../report/quirk_montage.rst",
                category="Quirk",
            ),
        log:
            "logs/{q}/analyse.log",
        benchmark:
            "benchmarks/{q}/analyse.tsv"
        wildcard_constraints:
            q=r"quirk(/seed-\d+)?",
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
            suffix=lambda wc: (
                "" if wc.q == "quirk" else f"--suffix=-s{quirk_seed_of(wc.q)}"
            ),
            out=lambda wc, output: os.path.dirname(output.table),
        shell:
            "twostream quirk --frames {input.frames} --overlay {input.overlay} --cued {input.cued}"
            " --truth {input.truth} --quirked {input.quirked} --clean {input.clean} {params.classes}"
            " {params.suffix} --out {params.out} --params {params.cfg:q} --threads {threads} > {log} 2>&1"

    rule quirk_seeds:
        input:
            tables=expand("{d}/quirk.csv", d=quirk_dirs()),
            verifications=expand("{d}/verification.csv", d=quirk_dirs()),
        output:
            table="results/quirk/seeds.csv",
            findings="results/quirk/seeds.md",
        log:
            "logs/quirk/seeds.log",
        benchmark:
            "benchmarks/quirk/seeds.tsv"
        conda:
            "../envs/summary.yaml"
        threads: 1
        resources:
            mem_mb=1000,
            runtime=5,
        params:
            runs=lambda wc, input: " ".join(os.path.dirname(t) for t in input.tables),
            seeds=" ".join(str(s) for s in quirk_seeds()),
            out=lambda wc, output: os.path.dirname(output.table),
            code=code_hash("quirk"),
        shell:
            "twostream quirk --runs {params.runs} --run-seeds {params.seeds} --out {params.out} > {log} 2>&1"
