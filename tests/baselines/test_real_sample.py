"""benchmarks/experiments/real_sample.py on the real PTB-XL sample (../shared; skipped when absent): the random-init row
(no pretraining, so it runs in seconds), a separate table titled with the sample size."""

from __future__ import annotations

import os

import pytest
from bl_e2e import REPO


@pytest.mark.shared
def test_real_sample_table_for_random_init(tmp_path, ptbxl500, monkeypatch):
    import importlib

    mod = importlib.import_module("benchmarks.experiments.real_sample")
    monkeypatch.delenv("ECG_DATA_ROOT", raising=False)
    out = tmp_path / "board" / "sample.md"
    assert (
        mod.main(
            [
                "--methods",
                "random_init",
                "--sample",
                str(ptbxl500),
                "--run-store",
                str(tmp_path / "runs"),
                "--results",
                str(tmp_path / "results"),
                "--out",
                str(out),
                "--override",
                "eval.bootstrap=20",
            ]
        )
        == 0
    )
    text = out.read_text()
    sizes = mod.split_sizes(tmp_path / "runs" / "ptbxl500-root")
    assert sum(sizes.values()) <= 500 and sizes["test"] > 0
    assert (
        f"n = {sum(sizes.values())} records with a super-class label" in text
        and f"10 test (n = {sizes['test']})" in text
    )
    assert "| random_init " in text and "Linear probe, 100%" in text
    assert str(ptbxl500.resolve()) not in text and "◊" in text  # no machine path; partial data is marked
    assert not list((tmp_path / "results").glob("synthetic/**/*.json"))  # real results only, own directory
    assert list((tmp_path / "results").glob("real/random_init/ptbxl_super/linear_probe-100-seed0.json"))


def test_real_sample_rejects_a_directory_that_is_not_ptbxl(tmp_path):
    import importlib

    mod = importlib.import_module("benchmarks.experiments.real_sample")
    with pytest.raises(SystemExit, match="ptbxl_database.csv"):
        mod.data_root_for(tmp_path, tmp_path / "runs")


def test_generated_sample_table_names_no_machine_path(tmp_path):
    import importlib

    mod = importlib.import_module("benchmarks.experiments.real_sample")
    assert mod.shown_path(REPO.parent / "shared" / "data" / "ptbxl-500") == "../shared/data/ptbxl-500"
    # elsewhere: never the absolute path (relative when the temp dir happens to sit beside the clone, e.g. a clone
    # directly under /tmp; else only the directory name)
    elsewhere = mod.shown_path(tmp_path / "somewhere" / "ptbxl-500")
    assert not os.path.isabs(elsewhere) and elsewhere.endswith("ptbxl-500") and str(tmp_path) not in elsewhere
    if not tmp_path.is_relative_to(REPO.parent):
        assert elsewhere == "ptbxl-500"
    committed = (REPO / "leaderboard" / "ptbxl500-sample.md").read_text()
    assert "Sample: `../shared/data/ptbxl-500`" in committed and str(REPO.parent) not in committed
