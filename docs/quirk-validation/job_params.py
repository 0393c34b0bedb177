"""The ``--params`` JSON of the job that made OUTPUT in a finished run, read from the command
Snakemake recorded for it (``.snakemake/metadata``), so that design.sh runs exactly the
settings the pipeline ran, with no copy of them here.

    python docs/quirk-validation/job_params.py RUN_FOLDER OUTPUT [OVERRIDES_JSON]

OVERRIDES_JSON (optional) updates the ``quirk`` section, e.g. '{"size": 12}'.
"""

import base64
import json
import shlex
import sys
from pathlib import Path


def job_params(run: Path, output: str) -> dict:
    name = base64.urlsafe_b64encode(output.encode()).decode()  # as snakemake.persistence names it
    meta = run / ".snakemake" / "metadata" / name
    if not meta.is_file():
        sys.exit(f"{meta}: no record of the job that made {output} (run the pipeline first)")
    words = shlex.split(json.loads(meta.read_text())["shellcmd"])
    return json.loads(words[words.index("--params") + 1])


def main(argv: list[str]) -> int:
    p = job_params(Path(argv[0]), argv[1])
    if len(argv) > 2:
        p["quirk"].update(json.loads(argv[2]))
    print(json.dumps(p, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
