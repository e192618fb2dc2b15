"""End to end on fakes: closed-form zero-shot and probe AUROC, result files, caching, not-applicable."""

import json
from pathlib import Path

import numpy as np
import pytest

from ecg_eval.embeddings import embed, embed_split
from ecg_eval.harness import already_done, evaluate
from ecg_eval.metrics import multilabel_auroc
from ecg_eval.probe import ProbeConfig
from ecg_eval.prompts import PromptError
from ecg_eval.results import read_predictions, read_result

FAST = ProbeConfig(weight_decays=(1e-3, 1e-1), iterations=(10, 40))


def _run(fake_task, loader, tmp_path, mode, enc, **kw):
    task, _ = fake_task
    return evaluate(
        enc,
        task,
        mode,
        results_root=tmp_path / "results",
        embed_cache=tmp_path / "emb",
        split_loader=loader,
        n_resamples=200,
        **kw,
    )


def test_zero_shot_closed_form(fake_task, loader, prompt_file, tmp_path, Mock) -> None:
    r = _run(fake_task, loader, tmp_path, "zero_shot", enc=Mock(), prompt_file=prompt_file)
    assert r["status"] == "ok"
    assert r["scores"]["per_class_auroc"]["A"] == 1.0  # feature 0 separates A, A's prompt points along it
    assert r["scores"]["per_class_auroc"]["B"] == 0.5  # B's prompt is orthogonal to every feature: all ties
    assert r["scores"]["macro_auroc"] == 0.75
    assert r["excluded_classes"] == {"C": "no positive in the evaluated split"}
    assert r["ci"]["macro_auroc"][0] <= 0.75 <= r["ci"]["macro_auroc"][1]
    assert set(r["ci"]["per_class_auroc"]) == {"A", "B"}
    path = tmp_path / "results/synthetic/mock/synth_fake/zero_shot-seed0.json"
    assert r["result_path"] == str(path) and read_result(path)["scores"] == r["scores"]
    assert r["pretrained_on"] == ["synth-mimic"] and r["seen_in_pretraining"] is False


@pytest.mark.parametrize("fraction", [1.0, 0.5])
def test_probe_closed_form(fake_task, loader, tmp_path, fraction, Mock) -> None:
    r = _run(fake_task, loader, tmp_path, "linear_probe", enc=Mock(), fraction=fraction, seed=1, probe_config=FAST)
    assert r["scores"]["per_class_auroc"]["A"] == 1.0
    assert r["scores"]["per_class_auroc"]["B"] == 0.5  # B balanced against A, no feature carries it
    assert "C" in r["excluded_classes"]
    assert r["selection"]["weight_decay"] in FAST.weight_decays
    assert len(r["selection"]["grid"]) == 4
    assert r["n_train"] == int(40 * fraction)
    name = f"linear_probe-{int(fraction * 100)}-seed1.json"
    assert r["result_path"].endswith(f"synthetic/mock/synth_fake/{name}")


def test_predictions_recompute_the_metrics(fake_task, loader, tmp_path, Mock) -> None:
    r = _run(fake_task, loader, tmp_path, "linear_probe", enc=Mock(), fraction=1.0, probe_config=FAST)
    from pathlib import Path

    pred = read_predictions(Path(r["result_path"]).parent / r["predictions"])
    rep = multilabel_auroc(pred["y_true"], pred["scores"], list(pred["classes"]))
    assert rep.macro == pytest.approx(r["scores"]["macro_auroc"], abs=1e-6)
    task, _ = fake_task
    assert list(pred["record_ids"]) == task.splits["test"]


def test_ecg_only_encoder_is_not_applicable(fake_task, loader, tmp_path, Mock) -> None:
    enc = Mock(text=False)
    r = _run(fake_task, loader, tmp_path, "zero_shot", enc=enc)
    assert r["status"] == "not_applicable" and r["scores"] is None
    assert enc.calls == 0  # nothing encoded, nothing faked
    assert read_result(r["result_path"])["status"] == "not_applicable"


def test_missing_prompt_names_the_class(fake_task, loader, tmp_path, Mock) -> None:
    bad = tmp_path / "p.json"
    bad.write_text(json.dumps({"A": "alpha"}))
    with pytest.raises(PromptError, match=r"'B', 'C'") as e:
        _run(fake_task, loader, tmp_path, "zero_shot", enc=Mock(), prompt_file=bad)
    assert str(bad) in str(e.value)


def test_embedding_cache_reused_across_prompts_and_probe_settings(
    fake_task, loader, prompt_file, tmp_path, Mock
) -> None:
    enc = Mock()
    _run(fake_task, loader, tmp_path, "zero_shot", enc=enc, prompt_file=prompt_file)
    first = enc.calls
    assert first > 0
    _run(fake_task, loader, tmp_path, "zero_shot", enc=enc, prompt_file=prompt_file, templates=["ECG showing {}"])
    assert enc.calls == first  # new prompts: no re-encoding
    _run(fake_task, loader, tmp_path, "linear_probe", enc=enc, fraction=1.0, probe_config=FAST)
    after_probe = enc.calls  # train and val encoded once
    _run(fake_task, loader, tmp_path, "linear_probe", enc=enc, fraction=0.5, probe_config=ProbeConfig(iterations=(5,)))
    assert enc.calls == after_probe
    other = Mock(checkpoint="different")
    task, _ = fake_task
    embed(other, task, "test", cache_dir=tmp_path / "emb", split_loader=loader)
    assert other.calls > 0  # another checkpoint is another key


def test_embed_aligned_with_record_ids(fake_task, loader, tmp_path, Mock) -> None:
    task, caches = fake_task
    e = embed_split(Mock(), task, "val", batch_size=3, cache_dir=tmp_path, split_loader=loader)
    assert e.record_ids == caches["val"].record_ids
    np.testing.assert_array_equal(e.features[:, 0], 2 * task.y(e.record_ids)[:, 0] - 1)


def test_skip_if_exists_checks_checkpoint(fake_task, loader, tmp_path, Mock) -> None:
    task, _ = fake_task
    enc = Mock()
    kw = dict(results_root=tmp_path / "results", probe_config=FAST, n_resamples=200)
    assert not already_done(enc, task, "linear_probe", 1.0, 0, **kw)
    _run(fake_task, loader, tmp_path, "linear_probe", enc=enc, fraction=1.0, probe_config=FAST)
    assert already_done(enc, task, "linear_probe", 1.0, 0, **kw)
    # another probe grid, bootstrap or probe kind is another evaluation: never reused
    assert not already_done(enc, task, "linear_probe", 1.0, 0, **{**kw, "probe_config": None})
    assert not already_done(enc, task, "linear_probe", 1.0, 0, **{**kw, "n_resamples": 1000})
    assert not already_done(enc, task, "linear_probe_paper", 1.0, 0, **kw)
    assert not already_done(Mock(checkpoint="new"), task, "linear_probe", 1.0, 0, **kw)
    assert not already_done(enc, task, "linear_probe", 0.1, 0, **kw)


def test_seen_in_pretraining(fake_task, loader, tmp_path, Mock) -> None:
    from ecg_eval.results import seen_in_pretraining

    assert seen_in_pretraining(["synth-ptbxl"], "synth_ptbxl_sub", "ptbxl") == ["synth-ptbxl"]
    assert seen_in_pretraining(["PTB-XL"], "ptbxl_super", "ptbxl") == ["PTB-XL"]
    assert seen_in_pretraining(["mimic_iv_ecg"], "cpsc2018", "cpsc2018") == []


def test_config_is_plain_data_stored_as_given(fake_task, loader, tmp_path, Mock) -> None:
    """The runner converts its Hydra config once (benchmarks.pipeline.store.plain); the harness takes plain data."""
    cfg = {"method": "mock", "eval": {"seeds": [0, 1]}, "x": "mock"}
    r = _run(fake_task, loader, tmp_path, "zero_shot", enc=Mock(text=False), config=cfg)
    assert read_result(r["result_path"])["config"]["caller"] == cfg
    OmegaConf = pytest.importorskip(
        "omegaconf", reason="omegaconf comes with the workspace root, not ecg-eval"
    ).OmegaConf
    with pytest.raises(TypeError, match="plain dict.*OmegaConf.to_container"):
        _run(fake_task, loader, tmp_path / "b", "zero_shot", enc=Mock(text=False), config=OmegaConf.create(cfg))


def test_method_name_override(fake_task, loader, tmp_path, Mock) -> None:
    task, _ = fake_task
    enc = Mock(text=False)
    r = _run(fake_task, loader, tmp_path, "zero_shot", enc=enc, method="mock-large")
    assert "/mock-large/" in r["result_path"] and r["method"] == "mock-large"
    assert already_done(
        enc, task, "zero_shot", None, 0, results_root=tmp_path / "results", method="mock-large", n_resamples=200
    )


def test_harness_results_publish(fake_task, loader, prompt_file, tmp_path, Mock) -> None:
    from ecg_eval.leaderboard import publish

    _run(fake_task, loader, tmp_path, "zero_shot", enc=Mock(), prompt_file=prompt_file)
    _run(fake_task, loader, tmp_path, "zero_shot", enc=Mock(name="ecgonly", text=False))
    for seed in (0, 1):
        _run(fake_task, loader, tmp_path, "linear_probe", enc=Mock(), fraction=0.5, seed=seed, probe_config=FAST)
    text = publish(tmp_path / "results", tmp_path / "README.md", plot=False).read_text()
    assert "## Synthetic data" in text and "## Real data" not in text
    assert "### Linear probe, 50% of the training data" in text
    zs = text.split("### Zero-shot")[1].split("###")[0]
    assert "| ecgonly" in zs and "n/a" in zs and "**75.0" in zs  # macro = (1.0 + 0.5) / 2


def test_result_says_what_was_evaluated(fake_task, loader, prompt_file, tmp_path, Mock) -> None:
    """Split/subset hashes, dataset fingerprint and config hash are stored; a change in any of them is a new cell."""
    import json

    from ecg_eval.results import ids_hash

    task, _ = fake_task
    enc = Mock()
    r = _run(fake_task, loader, tmp_path, "zero_shot", enc=enc, prompt_file=prompt_file)
    ev = r["evaluated"]
    assert ev["split_sha256"] == {"test": ids_hash(task.splits["test"])}
    assert ev["dataset_fingerprint"] == task.reader().fingerprint() and len(ev["eval_config_sha256"]) == 16
    assert r["evaluation_settings"]["prompts"]["templates"] == ["{}"]
    kw = dict(results_root=tmp_path / "results", prompt_file=prompt_file, n_resamples=200)
    assert already_done(enc, task, "zero_shot", None, 0, **kw)
    other = tmp_path / "other_prompts.json"
    other.write_text(json.dumps({**json.loads(Path(prompt_file).read_text()), "extra": "x"}))
    assert not already_done(enc, task, "zero_shot", None, 0, **{**kw, "prompt_file": other})  # prompts changed
    assert not already_done(enc, task, "zero_shot", None, 0, **kw, templates=["ECG: {}"])
    import ecg_eval.harness as harness

    old = harness.INPUT_PREPARATION
    try:  # a change of how the harness prepares inputs (HeartLang's per-dataset presets): old cells are re-scored
        harness.INPUT_PREPARATION = old + 1
        assert not already_done(enc, task, "zero_shot", None, 0, **kw)
    finally:
        harness.INPUT_PREPARATION = old
    assert r["evaluation_settings"]["input_preparation"] == old
    task.splits["test"] = task.splits["test"][:-1]  # another test membership
    assert not already_done(enc, task, "zero_shot", None, 0, **kw)
    p = _run(fake_task, loader, tmp_path, "linear_probe", enc=enc, fraction=0.5, probe_config=FAST)
    assert p["evaluated"]["subset_sha256"] == ids_hash(task.train_subset(0.5, 0))
    assert set(p["evaluated"]["split_sha256"]) == {"train", "val", "test"}


def test_paper_probe_mode(fake_task, loader, tmp_path, Mock) -> None:
    r = _run(fake_task, loader, tmp_path, "linear_probe_paper", enc=Mock(), fraction=1.0)
    assert r["result_path"].endswith("linear_probe_paper-100-seed0.json") and r["mode"] == "linear_probe_paper"
    assert r["evaluation_settings"]["probe"]["kind"] == "paper" and r["config"]["linear_probe"]["lr"] == 1e-3
    assert r["scores"]["per_class_auroc"]["A"] > 0.9  # feature 0 separates A
    assert 1 <= r["selection"]["iterations"] <= 100


def test_paper_probe_uses_the_original_probe_feature_where_the_encoder_has_one(
    fake_task, loader, tmp_path, Mock
) -> None:
    """linear_probe_paper probes encode_ecg_probe (the paper's feature), with its own embedding cache entries;
    linear_probe (ours) keeps encode_ecg."""

    class WithProbeFeature(Mock):
        def encode_ecg_probe(self, x):
            self.probe_calls = getattr(self, "probe_calls", 0) + 1
            return -super().encode_ecg(x)  # a different feature with the same information

    enc = WithProbeFeature()
    paper = _run(fake_task, loader, tmp_path, "linear_probe_paper", enc=enc, fraction=1.0)
    assert paper["feature"] == "encode_ecg_probe" and enc.probe_calls > 0 and enc.calls == enc.probe_calls
    assert paper["scores"]["per_class_auroc"]["A"] > 0.9
    calls = enc.calls
    ours = _run(fake_task, loader, tmp_path, "linear_probe", enc=enc, fraction=1.0, probe_config=FAST)
    assert ours["feature"] == "encode_ecg" and enc.calls > calls  # not served from the probe feature's cache
    plain = _run(fake_task, loader, tmp_path / "p", "linear_probe_paper", enc=Mock(), fraction=1.0)
    assert plain["feature"] == "encode_ecg"
