# Rules for the visualize stage.
#
# visualize: one job per model of visualize.models (+ the negative control,
# visualize.control) -> results/visualization/{model}/: layers/{layer}.h5 and .png
# (optimised inputs of `units_per_layer` units per layer at each temporal weight),
# overview.png (one row per layer), classes.png (the verified class units),
# summary.csv, verification.csv and verification_runs.csv. The checks need the synthetic
# dataset's classes.csv (its generating factors); without it only the pictures and the
# summary are made. params.cfg leaves out the model lists, so adding a model to
# visualize.models runs only that model's job (and the collect step).
# verify_model: the checks alone (visualize.verify.other_seeds seeds) of every other
# trained cell of visualize.verify.models (all: the streams and every fusion cell) ->
# results/visualization/verified/{model}/verification.csv, verification_runs.csv.
# verify_untrained: the checks of visualize.verify.untrained's architecture from a fixed
# random init (the second negative control, verify.seeds seeds) ->
# results/visualization/untrained/{model}/.
# visualize_summary: every model's tables -> results/visualization/summary.csv and
# verification.csv.


rule visualize:
    input:
        unpack(eval_shards),
        checkpoint="results/models/{model}/checkpoint.pt",
        classes=classes_csv(),
    output:
        summary="results/visualization/{model}/summary.csv",
        verification="results/visualization/{model}/verification.csv",
        runs="results/visualization/{model}/verification_runs.csv",
        overview=report(
            "results/visualization/{model}/overview.png",
            caption="../report/visualization_overview.rst",
            category="Visualization",
            subcategory="{model}",
        ),
        classes=report(
            "results/visualization/{model}/classes.png",
            caption="../report/visualization_classes.rst",
            category="Visualization",
            subcategory="{model}",
        ),
        layers=report(
            directory("results/visualization/{model}/layers"),
            patterns=["{layer}.png"],
            caption="../report/visualization_layer.rst",
            category="Visualization",
            subcategory="{model}",
        ),
    log:
        "logs/visualize/{model}.log",
    benchmark:
        "benchmarks/visualize/{model}.tsv"
    wildcard_constraints:
        model=r"[A-Za-z0-9_.+-]+",
    conda:
        "../envs/torch.yaml"
    # one thread: many small convolutions scale poorly; two models run side by side instead
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
    params:
        cfg=vis_section(),
        code=code_hash("visualize"),
        shards=lambda wc, input: " ".join(
            f"--{k} " + " ".join(input[k])
            for k in ("frames", "flow")
            if k in input.keys()
        ),
        classes=lambda wc, input: f"--classes {input.classes}" if input.classes else "",
        control=lambda wc: "--control" if wc.model == grid.control_model(config) else "",
        out=lambda wc: f"results/visualization/{wc.model}",
    shell:
        "twostream visualize --checkpoint {input.checkpoint} {params.shards} {params.classes}"
        " {params.control} --out {params.out} --params {params.cfg:q} --threads {threads}"
        " > {log} 2>&1"


rule verify_model:
    input:
        checkpoint="results/models/{model}/checkpoint.pt",
        classes=classes_csv(),
    output:
        verification="results/visualization/verified/{model}/verification.csv",
        runs="results/visualization/verified/{model}/verification_runs.csv",
    log:
        "logs/visualize/verified/{model}.log",
    benchmark:
        "benchmarks/visualize/verified/{model}.tsv"
    wildcard_constraints:
        model=r"[A-Za-z0-9_.+-]+",
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=20,
    params:
        cfg=vis_section(),
        code=code_hash("visualize"),
        out=lambda wc: f"results/visualization/verified/{wc.model}",
    shell:
        "twostream visualize --verify-only --checkpoint {input.checkpoint} --classes {input.classes}"
        " --name {wildcards.model} --out {params.out} --params {params.cfg:q} --threads {threads}"
        " > {log} 2>&1"


rule verify_untrained:
    input:
        checkpoint="results/models/{model}/checkpoint.pt",
        classes=classes_csv(),
    output:
        verification="results/visualization/untrained/{model}/verification.csv",
        runs="results/visualization/untrained/{model}/verification_runs.csv",
    log:
        "logs/visualize/untrained/{model}.log",
    benchmark:
        "benchmarks/visualize/untrained/{model}.tsv"
    wildcard_constraints:
        model=r"[A-Za-z0-9_.+-]+",
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=20,
    params:
        cfg=vis_section(),
        code=code_hash("visualize"),
        out=lambda wc: f"results/visualization/untrained/{wc.model}",
    shell:
        "twostream visualize --untrained --checkpoint {input.checkpoint} --classes {input.classes}"
        " --name {wildcards.model}-untrained --out {params.out} --params {params.cfg:q}"
        " --threads {threads} > {log} 2>&1"


rule visualize_summary:
    input:
        summaries=expand(
            "results/visualization/{model}/summary.csv", model=vis_models()
        ),
        verifications=expand(
            "results/visualization/{model}/verification.csv", model=vis_models()
        ),
        verified=expand("{d}/verification.csv", d=verified_dirs()),
        quirk=expand("{d}/verification.csv", d=quirk_dirs()),
    output:
        summary="results/visualization/summary.csv",
        verification="results/visualization/verification.csv",
    log:
        "logs/visualize/summary.log",
    benchmark:
        "benchmarks/visualize/summary.tsv"
    conda:
        "../envs/summary.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        dirs=" ".join(
            [f"results/visualization/{m}" for m in vis_models()] + quirk_dirs()
        ),
        verified=" ".join(verified_dirs()),
        code=code_hash("visualize"),
    shell:
        "twostream visualize --collect {params.dirs} --verified {params.verified}"
        " --summary {output.summary} --verification {output.verification} > {log} 2>&1"
