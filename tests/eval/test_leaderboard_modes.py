"""Leaderboard sections of the new modes, rendered from real result files written by the harness on fakes."""

import dataclasses

from ecg_eval.harness import evaluate
from ecg_eval.leaderboard import build_tables, load_results, render
from ecg_eval.probe import ProbeConfig


def evaluate_transfer(encoder, source, target, train_mode, fraction=None, seed=0, *, finetune_config=None, **kw):
    """Domain transfer through the harness: a registered mode whose cell options are source and train_mode."""
    options = {"source": source, "train_mode": train_mode}
    if finetune_config is not None:
        options["finetune_config"] = finetune_config
    return evaluate(encoder, target, "transfer", fraction, seed, mode_options=options, **kw)


def test_sections_from_result_files(fake_task, loader, prompt_file, tmp_path, Mock) -> None:
    task, _ = fake_task
    kw = dict(results_root=tmp_path / "r", embed_cache=tmp_path / "e", split_loader=loader, n_resamples=30)
    evaluate(Mock(), task, "zero_shot", prompt_file=prompt_file, **kw)
    evaluate(Mock(text=False, name="ecgonly"), task, "retrieval", **kw)
    src = dataclasses.replace(
        task,
        name="synth_ptbxl_all",
        classes=["AFIB", "CRBBB"],
        labels=task.labels.rename(columns={"A": "AFIB", "B": "CRBBB"}),
    )
    tgt = dataclasses.replace(
        task, name="synth_cpsc2018", classes=["AF", "RBBB"], labels=task.labels.rename(columns={"A": "AF", "B": "RBBB"})
    )
    evaluate_transfer(
        Mock(), src, tgt, "linear_probe", 1.0, probe_config=ProbeConfig(weight_decays=(1e-3,), iterations=(10,)), **kw
    )
    results = load_results(tmp_path / "r")
    assert {r["mode"] for r in results} == {"zero_shot", "retrieval", "transfer"}
    assert [t.mode for t in build_tables(results)] == ["zero_shot"]  # the AUROC tables ignore the other modes
    md = render(results, [])
    assert "## Synthetic data (pipeline check, not a clinical result): other evaluation modes" in md
    zs = md.split("### Zero-shot macro F1 / accuracy")[1].split("###")[0]
    # A: F1 1, accuracy 1; B: all tied -> F1 2/3, accuracy 1/2 -> macro 83.3 / 75.0
    assert "83.3 / 75.0" in zs
    tr = md.split("### Domain transfer")[1].split("###")[0]
    assert "synth_ptbxl_all → synth_cpsc2018" in tr and "75.0" in tr  # AF 1.0, RBBB 0.5
    assert "n/a" in md.split("### ECG ↔ report retrieval")[1]  # the ECG-only method's retrieval row
