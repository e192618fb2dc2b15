"""benchmarks/run.py end to end with the toy method: stages, run store, skipping, resuming."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from benchmarks.pipeline import ConfigError, InjectedStop, run
from benchmarks.pipeline.store import RunStore

TOY = Path(__file__).resolve().parent / "toy"


def toy_overrides(tmp: Path, *, method: str = "toy", dataset: str = "toy") -> list[str]:
    """A run isolated in ``tmp``: toy method, toy evaluation backend, quick eval grid."""
    return [
        f"method={method}",
        f"dataset={dataset}",
        "backend._target_=ecgbench_toy.ToyBackend",
        "eval=quick",
        f"run_store={tmp / 'runs'}",
        f"results_dir={tmp / 'results'}",
        f"leaderboard_dir={tmp / 'leaderboard'}",
    ]


def _results(tmp: Path) -> list[str]:
    return sorted(str(p.relative_to(tmp / "results")) for p in (tmp / "results").rglob("*.json"))


def _statuses(tmp: Path) -> list[tuple[str, str]]:
    return [(e["stage"], e["status"]) for e in RunStore(tmp / "runs").events()]


def test_end_to_end_writes_results_and_leaderboard(tmp_path, compose_cfg, monkeypatch):
    calls = tmp_path / "calls.txt"
    monkeypatch.setenv("TOY_CALLS", str(calls))
    summary = run(compose_cfg(toy_overrides(tmp_path)))

    # eval=quick: per task 1 zero-shot cell + both probes at fractions 0.01/0.1/1.0 with one seed each
    probes = [f"{m}-{f}-seed0" for m in ("linear_probe", "linear_probe_paper") for f in ("0.01", "0.1", "1")]
    expected = sorted(
        f"synthetic/toy/{t}/{stem}.json" for t in ("toy_a", "toy_b") for stem in ("zero_shot-seed0", *probes)
    )
    # retrieval and report generation: one cell each on the pretraining corpus' task
    pairs = [f"synthetic/toy/synth_mimic/{m}-seed0.json" for m in ("report_generation", "retrieval")]
    assert _results(tmp_path) == sorted(expected + pairs)
    board = (tmp_path / "leaderboard" / "README.md").read_text()
    assert all(r in board for r in expected)
    assert calls.read_text().split() == ["init", "main", "load"]
    # every result file names the checkpoint that produced it and the pretraining corpus
    first = json.loads((tmp_path / "results" / expected[0]).read_text())
    assert first["checkpoint_hash"] == summary["checkpoint_hash"]
    assert first["pretrained_on"] == ["synth-mimic"]
    assert summary["run_dir"].parent == tmp_path / "runs" / "toy"
    assert (summary["run_dir"] / "COMPLETE.json").is_file()
    assert _statuses(tmp_path) == [
        ("pretrain/init", "ran"),
        ("pretrain/main", "ran"),
        ("pretrain", "ran"),
        ("zero_shot", "ran"),
        ("linear_probe", "ran"),
        ("linear_probe_paper", "ran"),
        ("retrieval", "ran"),
        ("report_generation", "ran"),
        ("publish", "ran"),
    ]


def test_second_run_skips_every_stage(tmp_path, compose_cfg, monkeypatch):
    calls = tmp_path / "calls.txt"
    monkeypatch.setenv("TOY_CALLS", str(calls))
    cfg = compose_cfg(toy_overrides(tmp_path))
    first = run(cfg)
    n_events = len(_statuses(tmp_path))
    second = run(cfg)
    assert second["checkpoint_hash"] == first["checkpoint_hash"]
    assert _statuses(tmp_path)[n_events:] == [
        ("pretrain", "skipped"),
        ("zero_shot", "skipped"),
        ("linear_probe", "skipped"),
        ("linear_probe_paper", "skipped"),
        ("retrieval", "skipped"),
        ("report_generation", "skipped"),
        ("publish", "skipped"),
    ]
    assert calls.read_text().split() == ["init", "main", "load"]  # not even the encoder was loaded again


def test_resume_inside_pretraining(tmp_path, compose_cfg, monkeypatch):
    calls = tmp_path / "calls.txt"
    monkeypatch.setenv("TOY_CALLS", str(calls))
    cfg = compose_cfg(toy_overrides(tmp_path))
    monkeypatch.setenv("ECGBENCH_STOP_AFTER", "pretrain/init")
    with pytest.raises(InjectedStop):
        run(cfg)
    assert _results(tmp_path) == []
    monkeypatch.delenv("ECGBENCH_STOP_AFTER")
    run(cfg)
    assert calls.read_text().split() == ["init", "main", "load"]  # init ran once, main once
    assert ("pretrain/init", "skipped") in _statuses(tmp_path)


def test_changed_hyperparameter_pretrains_again_and_rescores(tmp_path, compose_cfg):
    a = run(compose_cfg(toy_overrides(tmp_path)))
    b = run(compose_cfg([*toy_overrides(tmp_path), "method.stages.1.steps=5"]))
    assert a["run_dir"] != b["run_dir"]
    assert a["checkpoint_hash"] != b["checkpoint_hash"]
    # same result paths, now owned by the new checkpoint
    for p in (tmp_path / "results").rglob("*.json"):
        assert json.loads(p.read_text())["checkpoint_hash"] == b["checkpoint_hash"]
    # editing how a checkpoint is loaded does not change the run address
    c = run(compose_cfg([*toy_overrides(tmp_path), "method.stages.1.steps=5", "method.load.width=4"]))
    assert c["run_dir"] == b["run_dir"]


def test_ckpt_argument_skips_pretraining(tmp_path, compose_cfg, monkeypatch):
    trained = run(compose_cfg(toy_overrides(tmp_path / "a")))
    calls = tmp_path / "calls.txt"
    monkeypatch.setenv("TOY_CALLS", str(calls))
    out = run(compose_cfg([*toy_overrides(tmp_path / "b"), f"ckpt={trained['checkpoint']}"]))
    assert calls.read_text().split() == ["load"]
    assert out["checkpoint_hash"] == trained["checkpoint_hash"]
    assert len(_results(tmp_path / "b")) == 2 * (1 + 3 + 3) + 2  # + retrieval and report generation on the corpus task


def test_ecg_only_method_without_stages(tmp_path, compose_cfg):
    out = run(compose_cfg(toy_overrides(tmp_path, method="toy_ecg_only")))
    assert out["checkpoint"] is None
    zs = sorted((tmp_path / "results").rglob("zero_shot-*.json"))
    assert len(zs) == 2  # one per task, each marked "not applicable" by the backend, never scored
    assert all(json.loads(p.read_text())["status"] == "not_applicable" for p in zs)
    assert all(json.loads(p.read_text())["status"] == "ok" for p in (tmp_path / "results").rglob("linear_probe-*.json"))


def test_pretraining_seed_gets_its_own_run_and_rows(tmp_path, compose_cfg):
    a = run(compose_cfg(toy_overrides(tmp_path)))
    b = run(compose_cfg([*toy_overrides(tmp_path), "seed=1"]))
    assert a["run_dir"] != b["run_dir"] and b["run_dir"].name.endswith("-seed1")
    assert {f.split("/")[1] for f in _results(tmp_path)} == {"toy", "toy-pt1"}


def test_stages_option_stops_after_pretraining(tmp_path, compose_cfg):
    out = run(compose_cfg([*toy_overrides(tmp_path), "stages=[pretrain]"]))
    assert out["checkpoint"].is_file() and _results(tmp_path) == []


@pytest.mark.parametrize(
    "override, message",
    [
        ("~method.load", "configs/method/toy.yaml: 'load' needs a '_target_'"),
        ("method.stages.0._target_=ecgbench_toy.nope", "cannot import _target_ 'ecgbench_toy.nope'"),
        ("stages=[pretrain,probe]", "unknown stage(s) ['probe']"),
    ],
)
def test_broken_method_config_names_the_problem(tmp_path, compose_cfg, override, message):
    with pytest.raises(ConfigError, match=None) as err:
        run(compose_cfg([*toy_overrides(tmp_path), override]))
    assert message in str(err.value)


def test_method_config_from_search_path_outside_repo(tmp_path, compose_cfg, monkeypatch):
    """What `hydra.searchpath=[file://DIR]` does for a user's method (module importable from PYTHONPATH)."""
    ext = tmp_path / "my_methods"
    (ext / "method").mkdir(parents=True)
    shutil.copy(TOY / "ecgbench_toy.py", ext / "my_ext_method.py")
    (ext / "method" / "ext.yaml").write_text(
        (TOY / "method" / "toy.yaml")
        .read_text()
        .replace("ecgbench_toy.", "my_ext_method.")
        .replace("name: toy", "name: ext")
    )
    shutil.copytree(TOY / "dataset", ext / "dataset")
    monkeypatch.syspath_prepend(str(ext))
    cfg = compose_cfg([*toy_overrides(tmp_path, method="ext"), "backend._target_=my_ext_method.ToyBackend"], search=ext)
    run(cfg)
    assert any(f.startswith("synthetic/ext/") for f in _results(tmp_path))


def test_missing_real_dataset_names_layout_before_pretraining(tmp_path, compose_cfg, monkeypatch):
    """ecg_data's DatasetNotFoundError reaches the entry point (which prints it, exit 2) before any pretraining."""
    tasks = pytest.importorskip("ecg_data.tasks", reason="ecg_data.tasks not available")
    from ecg_data.record import DatasetNotFoundError

    empty = tmp_path / "data"
    empty.mkdir()
    monkeypatch.delenv("ECG_DATA_ROOT", raising=False)
    cfg = compose_cfg([*toy_overrides(tmp_path, dataset="ptbxl_super"), f"data_root={empty}"])
    with pytest.raises(DatasetNotFoundError) as err:
        run(cfg)
    with pytest.raises(DatasetNotFoundError) as direct:
        tasks.get_task("ptbxl_super")
    assert str(err.value) == str(direct.value) and "ptbxl" in str(err.value)
    assert not (tmp_path / "runs" / "toy").exists()


def test_scored_encoder_hides_text_only_when_asked_and_forwards_the_rest():
    import torch
    from ecgbench_toy import load

    from benchmarks.pipeline.evaluate import ScoredEncoder
    from ecg_eval.protocol import supports_zero_shot

    class WithEval(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = load(None)
            self.lin = torch.nn.Linear(2, 2)
            self.input_spec, self.card = self.inner.input_spec, self.inner.card

        def encode_ecg(self, x):
            return self.inner.encode_ecg(x)

        def encode_text(self, texts):
            return self.inner.encode_text(texts)

    model = WithEval().train()
    text = ScoredEncoder(model, name="renamed", pretrained_on=["synth-mimic"], zero_shot=True)
    ecg_only = ScoredEncoder(model, name="renamed", pretrained_on=[], zero_shot=False)
    assert supports_zero_shot(text) and not supports_zero_shot(ecg_only)
    assert text.card.name == "renamed" and text.card.pretrained_on == ("synth-mimic",)
    assert text.card.checkpoint_hash == model.card.checkpoint_hash
    ecg_only.eval()  # forwarded: the harness puts the real module in eval mode
    assert not model.training
    assert next(iter(ecg_only.parameters())) is model.lin.weight


def test_unknown_task_name_in_a_dataset_config_lists_valid_tasks(tmp_path, compose_cfg):
    pytest.importorskip("ecg_data.tasks", reason="ecg_data.tasks not available")
    from ecg_data.registry import UnknownNameError

    with pytest.raises(UnknownNameError) as err:
        run(compose_cfg([*toy_overrides(tmp_path), "dataset.tasks=[ptbxl_superr]"]))
    assert "ptbxl_superr" in str(err.value) and "ptbxl_super" in str(err.value).replace("ptbxl_superr", "")


def test_missing_pretraining_corpus_stops_before_any_stage(tmp_path, compose_cfg, monkeypatch):
    pytest.importorskip("ecg_data.tasks", reason="ecg_data.tasks not available")
    from ecg_data.record import DatasetNotFoundError

    empty = tmp_path / "data"
    empty.mkdir()
    monkeypatch.delenv("ECG_DATA_ROOT", raising=False)
    cfg = compose_cfg(
        [
            *toy_overrides(tmp_path),
            "pretrain_data=mimic_iv_ecg",
            f"data_root={empty}",
            "backend._target_=benchmarks.pipeline.eval_backend.EcgEvalBackend",
            "dataset=toy",
        ]
    )
    cfg.dataset.tasks = []  # only the pretraining corpus is checked here
    with pytest.raises(DatasetNotFoundError, match="mimic"):
        run(cfg)
    assert not (tmp_path / "runs" / "toy").exists()


def test_progress_bar_setting_does_not_change_the_run_address(compose_cfg, tmp_path):
    from benchmarks.pipeline.store import run_address

    base = compose_cfg(toy_overrides(tmp_path))
    assert run_address(base) == run_address(
        compose_cfg([*toy_overrides(tmp_path), "trainer.enable_progress_bar=false"])
    )
    assert run_address(base) != run_address(compose_cfg([*toy_overrides(tmp_path), "trainer.max_steps=7"]))
