"""Code hashes follow the imports of a hand-built package and of the real stages."""

from __future__ import annotations

import pytest

from twostream import codehash

TOY = {
    "__init__.py": "",
    "top.py": "import os\nfrom .helper import f\n",
    "helper.py": "def f():\n    from twostream.sub import deep  # a function-level import\n    return deep\n",
    "sub/__init__.py": "",
    "sub/deep.py": "from .. import leaf\n",
    "leaf.py": "import numpy\n",
    "alone.py": "from . import leaf\n",
}


@pytest.fixture
def toy(tmp_path, monkeypatch):
    root = tmp_path / "twostream"
    for rel, text in TOY.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    monkeypatch.setattr(codehash, "ROOT", root)
    codehash.direct_imports.cache_clear()
    yield root
    codehash.direct_imports.cache_clear()


def test_closure_follows_relative_absolute_and_function_level_imports(toy):
    assert codehash.closure("twostream.top") == [
        "twostream", "twostream.helper", "twostream.leaf", "twostream.sub", "twostream.sub.deep", "twostream.top"]
    assert codehash.closure("twostream.leaf") == ["twostream", "twostream.leaf"]
    assert codehash.closure("twostream.missing") == []


def test_hash_changes_with_imported_files_only(toy):
    before = codehash.code_hash("twostream.top")
    (toy / "alone.py").write_text("# not imported by top\n")
    assert codehash.code_hash("twostream.top") == before
    (toy / "sub" / "deep.py").write_text("from .. import leaf\n# edited\n")
    codehash.direct_imports.cache_clear()
    assert codehash.code_hash("twostream.top") != before


def test_stage_closures_of_the_package():
    names = lambda cmd: set(codehash.closure("twostream.cli", codehash.COMMANDS[cmd][0]))  # noqa: E731
    # the package imports models.fusion (a hand-kept list missed it for training); the ablation
    # table reads checkpoints with models/
    assert {"twostream.engine", "twostream.models.fusion", "twostream.data"} <= names("train")
    assert {"twostream.train", "twostream.models.fusion"} <= names("train-fusion")
    assert "twostream.engine" in names("evaluate") and "twostream.train" not in names("evaluate")
    assert "twostream.models" in names("ablation")
    assert not {"twostream.train", "twostream.flow"} & names("plots")
    assert codehash.command_hash("train") != codehash.command_hash("plots")
