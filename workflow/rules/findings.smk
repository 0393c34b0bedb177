# Rules of the findings stage (the paper's findings 2 and 3, measured per layer).
#
# findings_probes: the synthetic renderer -> results/findings/probes.h5, every probe clip's
# frames and quantized flow fields around its middle snippet, rendered once per run (the probe
# keys of findings, the synthetic settings, the streams' flow lengths and the flow shards' bound).
# findings_model: one job per visualized model (visualize.models + the control) ->
# results/visualization/{model}/units.csv (unit kinds from class profiles on test clips),
# invariance.csv (invariance index per layer and factor on probe clips of the synthetic
# renderer) and unit_checks.csv (activation maximisation of the most generic and the most
# specific top-layer unit), each for the trained network and an untrained one of the same
# architecture. Needs the synthetic dataset (its classes.csv and renderer settings).
# findings: every model's tables -> results/visualization/units.csv, invariance.csv,
# unit_checks.csv, units.png, invariance.png and results/findings.md (+ findings.rst for
# the report's landing page), with the ablation's findings as finding 1.


rule findings_probes:
    input:
        classes=classes_csv(),
        # the flow is quantized at the shards' bound; this input also keeps the job from
        # holding a core before the decode and flow jobs (it ran beside index, 33-65 s)
        flow=expand("results/flow/{shard}.h5", shard=shards()),
    output:
        probes="results/findings/probes.h5",
    log:
        "logs/findings/probes.log",
    benchmark:
        "benchmarks/findings/probes.tsv"
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        cfg=findings_probe_params(),
        synthetic=section("synthetic"),
        lengths=probe_flow_lengths(),
        code=code_hash("findings"),
    shell:
        "twostream findings --render-probes {output.probes} --classes {input.classes}"
        " --params {params.cfg:q} --synthetic {params.synthetic:q}"
        " --flow-length {params.lengths} --flow {input.flow} > {log} 2>&1"


rule findings_model:
    input:
        unpack(eval_shards),
        checkpoint="results/models/{model}/checkpoint.pt",
        classes=classes_csv(),
        probes="results/findings/probes.h5",
    output:
        units="results/visualization/{model}/units.csv",
        invariance="results/visualization/{model}/invariance.csv",
        checks="results/visualization/{model}/unit_checks.csv",
    log:
        "logs/findings/{model}.log",
    benchmark:
        "benchmarks/findings/{model}.tsv"
    wildcard_constraints:
        model=r"[A-Za-z0-9_.+-]+",
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
    params:
        cfg=section("findings"),
        vis=vis_section(),
        synthetic=section("synthetic"),
        code=code_hash("findings"),
        shards=lambda wc, input: " ".join(
            f"--{k} " + " ".join(input[k])
            for k in ("frames", "flow")
            if k in input.keys()
        ),
        out=lambda wc: f"results/visualization/{wc.model}",
    shell:
        "twostream findings --checkpoint {input.checkpoint} {params.shards}"
        " --classes {input.classes} --probes {input.probes} --out {params.out}"
        " --params {params.cfg:q}"
        " --visualize {params.vis:q} --synthetic {params.synthetic:q}"
        " --threads {threads} > {log} 2>&1"


rule findings:
    input:
        units=expand("results/visualization/{model}/units.csv", model=vis_models()),
        invariance=expand(
            "results/visualization/{model}/invariance.csv", model=vis_models()
        ),
        checks=expand(
            "results/visualization/{model}/unit_checks.csv", model=vis_models()
        ),
        ablation="results/ablation/findings.md",
    output:
        units="results/visualization/units.csv",
        invariance="results/visualization/invariance.csv",
        checks="results/visualization/unit_checks.csv",
        units_figure=report(
            "results/visualization/units.png",
            caption="../report/findings_units.rst",
            category="Findings",
        ),
        invariance_figure=report(
            "results/visualization/invariance.png",
            caption="../report/findings_invariance.rst",
            category="Findings",
        ),
        findings="results/findings.md",
        rst="results/findings.rst",
    log:
        "logs/findings/collect.log",
    benchmark:
        "benchmarks/findings/collect.tsv"
    conda:
        "../envs/summary.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        dirs=" ".join(f"results/visualization/{m}" for m in vis_models()),
        cfg=section("findings"),
        code=code_hash("findings"),
    shell:
        "twostream findings --collect {params.dirs} --params {params.cfg:q} --units {output.units}"
        " --invariance {output.invariance} --checks {output.checks}"
        " --units-figure {output.units_figure}"
        " --invariance-figure {output.invariance_figure}"
        " --ablation-findings {input.ablation} --findings {output.findings}"
        " --findings-rst {output.rst} > {log} 2>&1"
