"""``benchmarks/run.py`` preflight: an incomplete real tree prints its verify summary and the download command
before any training."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from ecg_data.download import download

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.pipeline.data_check import report_incomplete_data  # noqa: E402


def test_incomplete_tree_is_reported_with_the_command(shared_server, tmp_path, monkeypatch):
    data = tmp_path / "data"
    download("ptbxl", data / "ptbxl", records="2", mirror=shared_server.url("ptbxl"), progress=False)
    monkeypatch.setenv("ECG_DATA_ROOT", str(data))
    (msg,) = report_incomplete_data(["ptbxl_super", "ptbxl_rhythm", "synth_mimic", None])
    assert "ptbxl_super: train" in msg and "ptbxl_rhythm: train" in msg and "ptbxl_form" not in msg
    assert f"to complete it: python -m ecg_data download ptbxl --root {(data / 'ptbxl').absolute()}" in msg
    # a dataset that is not there at all: the same, with the command that fetches it
    (msg,) = report_incomplete_data(["cpsc2018"])
    assert "does not exist" in msg and "python -m ecg_data download cpsc2018 --root" in msg
    monkeypatch.delenv("ECG_DATA_ROOT")
    assert report_incomplete_data(["ptbxl_super"]) == []  # no data root: resolving the task says what to set


def test_complete_tree_is_silent(server, tmp_path, monkeypatch):
    data = tmp_path / "data"
    download("mimic-iv-ecg", data / "mimic-iv-ecg", mirror=server.url("mimic-iv-ecg"), progress=False)
    monkeypatch.setenv("ECG_DATA_ROOT", str(data))
    assert report_incomplete_data(["mimic_iv_ecg"]) == []


def test_runner_reports_before_pretraining(shared_server, tmp_path, caplog, monkeypatch):
    from hydra import compose, initialize_config_dir

    from benchmarks.pipeline import run
    from benchmarks.pipeline.errors import InjectedStop

    data = tmp_path / "data"
    download("ptbxl", data / "ptbxl", records="3", mirror=shared_server.url("ptbxl"), progress=False)
    monkeypatch.delenv("ECG_DATA_ROOT", raising=False)
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        cfg = compose(
            "config",
            overrides=[
                "method=random_init",
                "dataset=ptbxl_super",
                "eval=quick",
                "stages=[pretrain,linear_probe]",
                f"data_root={data}",
                f"run_store={tmp_path / 'runs'}",
                f"results_dir={tmp_path / 'results'}",
                f"leaderboard_dir={tmp_path / 'lb'}",
            ],
        )
    monkeypatch.setenv("ECGBENCH_STOP_AFTER", "pretrain")  # the preflight is all this test needs
    with caplog.at_level(logging.INFO, logger="ecgbench"), pytest.raises(InjectedStop):
        run(cfg)
    text = [r.getMessage() for r in caplog.records if r.name == "ecgbench"]
    pre = next(i for i, m in enumerate(text) if m.startswith("preflight: the ptbxl data is incomplete"))
    trained = next(i for i, m in enumerate(text) if m.startswith("pretrain:"))
    assert pre < trained
    assert f"python -m ecg_data download ptbxl --root {(data / 'ptbxl').absolute()}" in text[pre]


def test_names_that_are_not_ecg_data_tasks_are_left_to_their_backend(tmp_path, monkeypatch):
    monkeypatch.setenv("ECG_DATA_ROOT", str(tmp_path))
    assert report_incomplete_data(["toy_a", "synth_ptbxl_super"]) == []
