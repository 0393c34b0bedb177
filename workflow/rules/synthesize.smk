# rule synthesize: the synthetic action dataset (only when dataset.kind = synthetic).
# Writes dataset.root in the UCF101 layout (class folders of .avi videos) plus the split
# files that rule index reads; the whole folder is swapped in atomically when complete.

if config["dataset"]["kind"] == "synthetic":

    rule synthesize:
        output:
            classind=f"{config['dataset']['root']}/classInd.txt",
            trainlist=f"{config['dataset']['root']}/trainlist01.txt",
            vallist=f"{config['dataset']['root']}/vallist01.txt",
            testlist=f"{config['dataset']['root']}/testlist01.txt",
            classes=f"{config['dataset']['root']}/classes.csv",
            videos=f"{config['dataset']['root']}/videos.csv",
        log:
            "logs/synthesize.log",
        benchmark:
            "benchmarks/synthesize.tsv"
        conda:
            "../envs/data.yaml"
        threads: 2
        resources:
            mem_mb=2000,
            runtime=20,
        params:
            cfg=section("synthetic"),
            code=code_hash("synth"),
        shell:
            'twostream synth --params {params.cfg:q} --out "$(dirname {output.classind:q})"'
            " --threads {threads} > {log} 2>&1"
