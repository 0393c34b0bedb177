"""Changing one setting reruns exactly what it affects.

Real Snakemake dry runs on the tiny workflow, finished once for real in a
temporary copy of the project (shared with test_slurm.py).  Settings are changed
by an extra config file given after config/test.yaml, as a user would with
`snakemake -n --configfile config/test.yaml my-change.yaml`; code is changed in a
copy of the finished project.  Snakemake 9's default rerun triggers (mtime,
params, input, software-env, code) are in force.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent / "slurm"))
import tiny_run  # noqa: E402

pytestmark = pytest.mark.slow

# Rules downstream of each stage in the DAG (by the workflow's design).
PLOT_RULES = {"plots"}
TABLE_RULES = {"ablation_table", "findings"} | PLOT_RULES  # findings includes the ablation's findings
DOWNSTREAM_OF_TRAIN = {"train_stream", "train_fusion", "evaluate", "visualize", "verify_model", "verify_untrained",
                       "visualize_summary",
                       "findings_model", "quirk_data", "train_quirk", "quirk", "quirk_seeds",
                       # the probe clips: their params hold train.flow_length and flow.bound, their code
                       # hash is the findings stage's (which imports the models)
                       "findings_probes"} | TABLE_RULES
DOWNSTREAM_OF_FLOW = {"flow"} | DOWNSTREAM_OF_TRAIN


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    return tiny_run.finished_run(tmp_path_factory)


@pytest.fixture(scope="module")
def test_config(finished) -> dict:
    return tiny_run.effective_config(finished)


def overlay(tmp_path: Path, change: dict) -> Path:
    path = tmp_path / "change.yaml"
    path.write_text(yaml.safe_dump(change))
    return path


def rules_of(jobs: list[dict]) -> set[str]:
    return {j["rule"] for j in jobs}


def outputs_of(jobs: list[dict]) -> set[str]:
    return {o for j in jobs for o in j["output"]}


def test_nothing_changed_schedules_nothing(finished):
    assert tiny_run.scheduled(finished) == []
    table = tiny_run.summary(finished)
    assert len(table) > 0
    assert set(table["plan"]) == {"no update"}, table[table["plan"] != "no update"].to_string()


def test_flow_parameter_reruns_flow_and_downstream_not_decoding(finished, test_config, tmp_path):
    bound = test_config["flow"]["bound"]
    jobs = tiny_run.scheduled(finished, configfiles=[overlay(tmp_path, {"flow": {"bound": bound + 1}})])
    rules = rules_of(jobs)
    n_shards = int(test_config["decode"]["shards"])
    assert sum(j["rule"] == "flow" for j in jobs) == n_shards
    assert all("Params have changed" in j["reason"] for j in jobs if j["rule"] == "flow")
    assert {"flow", "train_stream", "train_fusion", "evaluate", "ablation_table"} <= rules
    assert rules <= DOWNSTREAM_OF_FLOW, rules - DOWNSTREAM_OF_FLOW
    # decoding and the appearance stream do not read flow
    outputs = outputs_of(jobs)
    assert not {o for o in outputs if o.startswith("results/frames/")}
    assert not {o for o in outputs if o.startswith(("results/models/rgb/", "results/eval/rgb/"))}


def test_plot_setting_reruns_only_plots(finished, test_config, tmp_path):
    plots = dict(test_config.get("plots") or {})
    assert plots, "the tiny config has no plots settings to change"
    key, value = sorted(plots.items())[0]
    changed = (not value) if isinstance(value, bool) else value + 1 if isinstance(value, (int, float)) else f"{value}x"
    jobs = tiny_run.scheduled(finished, configfiles=[overlay(tmp_path, {"plots": {key: changed}})])
    assert jobs, f"changing plots.{key} schedules nothing"
    assert rules_of(jobs) <= PLOT_RULES, rules_of(jobs)


def test_new_fusion_entry_schedules_its_training_evaluation_and_tables(finished, test_config, tmp_path):
    grid = dict(test_config["fusion"]["grid"])
    seeds = [int(s) for s in grid.get("seeds", [0])]
    new = {"method": grid["methods"][0], "position": grid["positions"][0], "seeds": [max(seeds) + 1]}
    grid["extra"] = list(grid.get("extra") or []) + [new]
    jobs = tiny_run.scheduled(finished, configfiles=[overlay(tmp_path, {"fusion": {"grid": grid}})])
    counts = {}
    for j in jobs:
        counts[j["rule"]] = counts.get(j["rule"], 0) + 1
    model = f"fusion-{new['method']}-{new['position']}-s{new['seeds'][0]}"
    assert counts.pop("train_fusion") == 1
    assert counts.pop("evaluate") == 1
    assert f"results/models/{model}/checkpoint.pt" in outputs_of(jobs)
    assert f"results/eval/{model}/scores.h5" in outputs_of(jobs)
    assert "ablation_table" in counts
    if test_config["visualize"]["verify"].get("models") == "all":  # every trained cell is verified
        assert counts.pop("verify_model") == 1
        assert counts.pop("visualize_summary") == 1
    assert set(counts) <= TABLE_RULES, counts


def test_a_further_quirk_training_seed_schedules_its_pair_its_analysis_and_the_seed_count(finished, test_config,
                                                                                          tmp_path):
    if not (test_config.get("quirk") or {}).get("enabled", True):
        pytest.skip("the tiny config runs no quirk experiment")
    jobs = tiny_run.scheduled(finished, configfiles=[overlay(tmp_path, {"quirk": {"train_seeds": [7]}})])
    counts = {}
    for j in jobs:
        counts[j["rule"]] = counts.get(j["rule"], 0) + 1
    assert counts.pop("train_quirk") == 2  # the quirked and the clean stream of seed 7
    assert counts.pop("quirk") == 1  # its analysis only: seed 0's stays
    assert counts.pop("quirk_seeds") == 1
    assert counts.pop("visualize_summary") == 1  # its verification rows join the table
    assert not counts, counts
    outs = outputs_of(jobs)
    assert {"results/quirk/seed-7/model/checkpoint.pt", "results/quirk/seed-7/clean/checkpoint.pt",
            "results/quirk/seed-7/quirk.csv", "results/quirk/seeds.md"} <= outs
    assert "results/quirk/quirk.csv" not in outs and "results/models/rgb/checkpoint.pt" not in outs


def test_a_detector_setting_reruns_the_quirk_analysis_not_its_data_or_trainings(finished, test_config, tmp_path):
    if not (test_config.get("quirk") or {}).get("enabled", True):
        pytest.skip("the tiny config runs no quirk experiment")
    jobs = tiny_run.scheduled(finished, configfiles=[overlay(tmp_path, {"quirk": {"detector": {"alpha": 0.05}}})])
    counts = {}
    for j in jobs:
        counts[j["rule"]] = counts.get(j["rule"], 0) + 1
    assert counts.pop("quirk") == 1  # the analysis reads the detector
    counts.pop("quirk_seeds", None)
    counts.pop("visualize_summary", None)  # the quirk rows join the verification table
    assert not counts, counts  # no quirk_data, no train_quirk
    # the control: a planting key reruns the planting and the quirked training
    jobs = tiny_run.scheduled(finished, configfiles=[overlay(tmp_path, {"quirk": {"share": 0.5}})])
    rules = {j["rule"] for j in jobs}
    assert {"quirk_data", "train_quirk", "quirk"} <= rules, rules


def edited_copy(finished: Path, tmp_path: Path, module: str) -> Path:
    """A copy of the finished project with one line appended to src/twostream/<module>
    (created when missing)."""
    work = tmp_path / "work"
    shutil.copytree(finished, work, symlinks=True)
    code = work / "src" / "twostream" / module
    code.write_text((code.read_text() if code.exists() else "") + "\n# an edit\n")
    return work


def test_editing_plot_code_reruns_plots_and_the_findings_figures(finished, tmp_path):
    # `twostream plots` and `twostream findings` (its figures: plots.save_figure) import plots.py;
    # no training, evaluation, visualization or table does
    jobs = tiny_run.scheduled(edited_copy(finished, tmp_path, "plots.py"))
    assert rules_of(jobs) == PLOT_RULES | {"findings", "findings_model", "findings_probes"}, rules_of(jobs)


def test_editing_a_module_training_imports_reruns_training_and_downstream(finished, tmp_path):
    # training imports twostream.models, whose __init__ imports models/fusion.py: the hand-kept
    # file list that came before the import closure missed it
    jobs = tiny_run.scheduled(edited_copy(finished, tmp_path, "models/fusion.py"))
    rules = rules_of(jobs)
    assert {"train_stream", "train_fusion", "evaluate", "ablation_table"} <= rules, rules
    assert rules <= DOWNSTREAM_OF_TRAIN, rules - DOWNSTREAM_OF_TRAIN
    assert all("Code has changed" in j["reason"] or "Params have changed" in j["reason"]
               for j in jobs if j["rule"] == "train_stream"), [j["reason"] for j in jobs]


def test_editing_a_module_only_the_table_imports_reruns_the_table(finished, tmp_path):
    # no training, evaluation or visualization imports ablation.py
    jobs = tiny_run.scheduled(edited_copy(finished, tmp_path, "ablation.py"))
    assert jobs and rules_of(jobs) <= TABLE_RULES, rules_of(jobs)


def test_editing_a_module_no_stage_imports_reruns_nothing(finished, tmp_path):
    assert tiny_run.scheduled(edited_copy(finished, tmp_path, "not_imported.py")) == []
