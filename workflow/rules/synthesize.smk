# rules for the synthesize stage: the synthetic action dataset (dataset.kind = synthetic)

if config["dataset"]["kind"] == "synthetic":

    rule synthesize:
        output:
            classind=f"{config['dataset']['root']}/classInd.txt",
            trainlist=f"{config['dataset']['root']}/trainlist01.txt",
            testlist=f"{config['dataset']['root']}/testlist01.txt",
            classes=f"{config['dataset']['root']}/classes.csv",
            videos=f"{config['dataset']['root']}/videos.csv",
        params:
            cfg=section("synthetic"),
            code=code_hash("synthesize"),
            root=config["dataset"]["root"],
        log:
            "logs/synthesize.log",
        benchmark:
            "benchmarks/synthesize.tsv"
        threads: 2
        resources:
            mem_mb=2000,
            runtime=20,
        conda:
            "../envs/data.yaml"
        shell:
            "twostream synth --params {params.cfg:q} --out {params.root:q} --threads {threads}"
            " > {log} 2>&1"
