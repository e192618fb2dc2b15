"""A contributor's dataset, kept OUTSIDE the repository: the exact files docs/adding-a-dataset.md shows (a module
with the reader and the task, and the dataset config that names it), found through ``method_dir=``, a method scored
on it by ``benchmarks/run.py`` to result files and a leaderboard, and the count of files the contributor wrote
(docs/architecture.md, "Where a newcomer adds")."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from contrib import REPO, compose_run, contributed_files, write_doc_files

DOC = REPO / "docs" / "adding-a-dataset.md"
#: the whole contribution: the reader + task module and the dataset config (<= 3 files)
FILES = ["dataset/my_toy.yaml", "my_toy_dataset.py"]


def write_toy_data(root: Path, n: int = 120, fs: int = 100, seconds: int = 10) -> None:
    """The data on disk (not the contributor's code): labels.csv and records/<id>.npy, AFIB with a 6 Hz wave."""
    rng = np.random.default_rng(0)
    (root / "records").mkdir(parents=True)
    t = np.arange(fs * seconds) / fs
    rows = ["record_id,patient_id,classes,report"]
    for i in range(n):
        afib = i % 2 == 0
        x = 0.1 * rng.standard_normal((12, fs * seconds)) + (0.5 * np.sin(2 * np.pi * 6 * t) if afib else 0.0)
        np.save(root / "records" / f"r{i:03d}.npy", x.astype(np.float32))
        rows.append(f"r{i:03d},p{i:03d},{'AFIB' if afib else 'NORM'},{'atrial fibrillation' if afib else 'normal ecg'}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")


@pytest.fixture
def my_datasets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The contributor's directory with the documented files; the registrations are undone afterwards."""
    from ecg_data.readers import READERS
    from ecg_data.tasks import TASKS

    user = tmp_path / "my_datasets"
    assert sorted(write_doc_files(DOC, user)) == FILES
    assert REPO not in user.resolve().parents  # really outside the repository
    monkeypatch.setattr(sys, "path", list(sys.path))  # method_dir= prepends the directory; undone after the test
    yield user
    TASKS._entries.pop("my_toy", None)
    READERS._entries.pop("my_toy", None)
    sys.modules.pop("my_toy_dataset", None)


def test_toy_dataset_outside_the_repo_scored_by_the_runner(my_datasets: Path, tmp_path: Path) -> None:
    from benchmarks.pipeline import run
    from ecg_eval.results import read_result

    write_toy_data(tmp_path / "data" / "my_toy")
    cfg = compose_run(
        [
            "method=random_init",  # no pretraining: a seed-fixed random tower
            "dataset=my_toy",
            f"method_dir={my_datasets}",
            f"data_root={tmp_path / 'data'}",
            "stages=[pretrain,linear_probe,publish]",
            "eval=quick",
            "eval.fractions=[1.0]",
            "eval.bootstrap=20",
            "eval.device=cpu",
            f"run_store={tmp_path / 'runs'}",
            f"results_dir={tmp_path / 'results'}",
            f"leaderboard_dir={tmp_path / 'leaderboard'}",
        ]
    )
    summary = run(cfg)
    assert summary["cells"] == {"linear_probe": 1}
    r = read_result(tmp_path / "results" / "real" / "random_init" / "my_toy" / "linear_probe-100-seed0.json")
    assert r["status"] == "ok" and r["task"] == "my_toy" and sorted(r["scores"]["per_class_auroc"]) == ["AFIB", "NORM"]
    assert "my_toy" in (tmp_path / "leaderboard" / "README.md").read_text()
    assert run(cfg)["cells"] == {"linear_probe": 0}  # the cell's identity matches: skipped
    assert contributed_files(my_datasets) == FILES  # a dataset in <= 3 files


def test_a_dataset_module_that_does_not_import_is_a_config_error(my_datasets: Path) -> None:
    from benchmarks.pipeline.errors import ConfigError
    from benchmarks.pipeline.runner import import_user_modules

    cfg = compose_run(["method=random_init", "dataset=my_toy", f"method_dir={my_datasets}", "dataset.modules=[nope]"])
    with pytest.raises(ConfigError, match=r"dataset\.modules: cannot import 'nope'.*method_dir="):
        import_user_modules(cfg)
