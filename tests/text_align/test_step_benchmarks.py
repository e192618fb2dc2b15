"""The training-step benchmarks time the presets the configs define, and their scripts run end to end.

``benchmarks/perf/step_models.py`` builds each method from its own config. At paper size the parameter counts must
be the ones ``tests/baselines/test_paper_counts.py`` reconciles with the original code, built on the ``meta``
device with BERT-base towers of the hub vocabularies (nothing allocated, nothing downloaded). Each count also
checks the config options that the benchmarks' earlier hand-written copies had lost.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
POOLER = 768 * 768 + 768


@pytest.fixture(scope="module")
def sm():
    sys.path.insert(0, str(REPO))
    return importlib.import_module("benchmarks.perf.step_models")


def _paper(sm, method: str) -> tuple[torch.nn.Module, dict, list[int]]:
    """(module, stage config, the text vocabularies step_models asked for), built on the meta device; the text
    tower comes from ``bert_from_config``'s loader, which the test has set to the expected vocabulary."""
    asked: list[int] = []
    with torch.device("meta"):
        m, stage = sm.build(method, True, lambda vocab, paper: asked.append(vocab) or Path(f"hub-{vocab}"))
    return m, stage, asked


def _n(module: torch.nn.Module, trainable: bool = False) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable)


def _unused(model: torch.nn.Module) -> int:
    """BERT pooler and wav2vec2 mask_emb, which another change may remove (as test_paper_counts excludes them)."""
    return sum(p.numel() for n, p in model.named_parameters() if ".pooler." in n or n.endswith("encoder.mask_emb"))


def test_paper_melp_is_the_pinned_preset(sm, bert_from_config) -> None:
    bert_from_config(30522)
    m, _, asked = _paper(sm, "melp")
    assert asked == [30522]  # heart_bert's vocabulary
    assert _n(m) - _unused(m) + 768 == 282_943_105  # + mask_emb, as the pin counts it
    assert m.ecg_tower.attn_pool_contrast.query.shape[0] == 12  # main_pretrain.py:162, not the 14 of the old copy
    assert m.text.max_length == 128 and m.text.causal
    assert m.hparams.decay_1d_params is True


def test_paper_merl_is_the_pinned_preset(sm, bert_from_config) -> None:
    bert_from_config(30522)
    m, _, asked = _paper(sm, "merl")
    assert asked == [30522]  # MedCPT's vocabulary
    assert _n(m) == 114_265_728
    assert _n(m, trainable=True) == _n(m) - _n(m.text)  # train_text_tower: false, no BERT tensor trained
    assert m.text.max_length == 256


def test_paper_esi_is_the_pinned_preset(sm, bert_from_config) -> None:
    bert_from_config(28895)
    m, stage, asked = _paper(sm, "esi")
    assert asked == [28895]  # BioLinkBERT's vocabulary
    assert _n(m) - _unused(m) + POOLER == 313_513_217  # BioLinkBERT's 28,895 tokens, ESI's CoCa decoder
    assert stage["decoder_block"] == "coca" and m.hparams.decoder_block == "coca"
    assert m.text.max_length == 500


def test_paper_heartlang_is_the_pinned_preset(sm) -> None:
    m, _, asked = _paper(sm, "heartlang")
    assert asked == []  # no text tower
    assert _n(m.encoder) == 38_262_528 and _n(m.head) == 6_299_648
    assert m.hparams.exclude_padding is False  # the original masks padding slots too


def test_module_kwargs_drop_stage_keys_and_point_the_text_tower_at_a_local_model(sm) -> None:
    stage = sm.stage_config("melp", True)
    kw = sm.module_kwargs(stage, True, lambda vocab, paper: Path(f"/models/{vocab}-{paper}"))
    assert not set(kw) & sm.STAGE_ONLY_KEYS
    assert kw["text_encoder"]["path"] == "/models/30522-True" and kw["text_encoder"]["name"] == "heart_bert"
    assert kw["ecg_tower"] == stage["ecg_tower"]


def _run(script: str, *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", f"benchmarks.perf.{script}", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_pretrain_step_script_prints_ratios_for_every_method(tmp_path: Path) -> None:
    out = tmp_path / "rows.json"
    stdout = _run(
        "pretrain_step",
        "--methods",
        "melp",
        "merl",
        "esi",
        "heartlang",
        "--sizes",
        "tiny",
        "--batches",
        "2",
        "--steps",
        "1",
        "--json",
        str(out),
    )
    rows = {line.split()[0]: line.split() for line in stdout.splitlines() if line.split()[:2][1:] == ["tiny"]}
    assert set(rows) == {"melp", "merl", "esi", "heartlang"}
    # the original-style padding is each tiny config's max_length; HeartLang has no text
    assert (rows["melp"][3], rows["merl"][3], rows["esi"][3], rows["heartlang"][3]) == ("128", "128", "192", "-")
    for cols in rows.values():
        base, ours, ours_pad, real_x, equal_x = map(float, cols[5:10])
        assert min(base, ours, ours_pad) > 0
        # the ratios are base / ours (not inverted); seconds are printed to 3 decimals, hence the tolerance
        assert real_x == pytest.approx(base / ours, rel=0.1) and equal_x == pytest.approx(base / ours_pad, rel=0.1)
    saved = {r["method"]: r for r in json.loads(out.read_text())}
    assert set(saved) == set(rows) and saved["esi"]["original_pad"] == 192 and saved["heartlang"]["text_tokens"] == 0
    assert all(r["real_pad_x"] == r["seconds"]["base"] / r["seconds"]["ours"] for r in saved.values())


def test_gpu_step_script_without_a_gpu_runs_the_trainer_step(tmp_path: Path) -> None:
    """The CPU fallback: tiny presets, the GPU trainer's perf mapping and clip norm, rows in an atomic JSON file."""
    out = tmp_path / "rows.json"
    stdout = _run("gpu_step", "--methods", "melp", "heartlang", "--device", "cpu", "--steps", "1", "--json", str(out))
    assert stdout.startswith("NO GPU")
    rows = {r["method"]: r for r in json.loads(out.read_text())}
    assert set(rows) == {"melp", "heartlang"}
    assert rows["melp"]["optimizer_impl"] == "fused" and rows["melp"]["clip"] == 1.0
    assert rows["melp"]["text_tokens"] > 0 and rows["heartlang"]["text_tokens"] == 0
    assert all(r["preset"] == "tiny" and r["tflop_per_step"] > 0 and r["samples_per_s"] > 0 for r in rows.values())


def test_clip_norms_come_from_the_configs(sm) -> None:
    """``ours`` clips as training does (the trainer's 1.0, or the method's own); ``base`` only where the method's
    config sets a value (HeartLang's MSM clips at 3.0 as its original script; MELP's original does not clip)."""
    ps = importlib.import_module("benchmarks.perf.pretrain_step")
    melp = {w.name: w.clip for w in ps.ways(False, sm.stage_config("melp", True))}
    heartlang = {w.name: w.clip for w in ps.ways(False, sm.stage_config("heartlang", True))}
    assert melp == {"base": None, "ours": 1.0, "ours@pad": 1.0}
    assert heartlang == {"base": 3.0, "ours": 3.0, "ours@pad": 3.0}
    assert sm.clip_norm({"trainer_overrides": {"gradient_clip_val": None}}, {"gradient_clip_val": 1.0}) is None


def test_gpu_step_paper_preflight_on_cpu(tmp_path: Path) -> None:
    """``--paper`` on the CPU: the paper presets under bf16 autocast, HeartLang clipping at its own 3.0."""
    out = tmp_path / "rows.json"
    stdout = _run(
        "gpu_step",
        "--paper",
        "--methods",
        "merl",
        "heartlang",
        "--device",
        "cpu",
        "--steps",
        "1",
        "--json",
        str(out),
    )
    assert stdout.startswith("NO GPU: paper presets under bf16 autocast")
    rows = {r["method"]: r for r in json.loads(out.read_text())}
    assert rows["merl"]["preset"] == "paper" and round(rows["merl"]["params_m"], 1) == 114.3
    assert rows["heartlang"]["clip"] == 3.0 and rows["merl"]["clip"] == 1.0


def test_a_users_method_from_docs_is_benchmarked(tmp_path: Path) -> None:
    """docs/adding-a-method.md's method, kept outside the repo, through ``--method-dir`` and ``--module-class``."""
    import re

    text = (REPO / "docs" / "adding-a-method.md").read_text()
    for name, body in re.findall(r"<!-- file: (\S+) -->\n```\w*\n(.*?)```", text, flags=re.S):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(body)
    out = tmp_path / "rows.json"
    _run(
        "pretrain_step",
        "--methods",
        "my_method",
        "--method-dir",
        str(tmp_path),
        "--module-class",
        "my_method:MyMethod",
        "--sizes",
        "tiny",
        "--batches",
        "2",
        "--steps",
        "1",
        "--json",
        str(out),
    )
    (row,) = json.loads(out.read_text())
    assert row["method"] == "my_method" and row["text_tokens"] == 0 and row["seconds"]["ours"] > 0
    missing = subprocess.run(
        [sys.executable, "-m", "benchmarks.perf.pretrain_step", "--methods", "my_method", "--sizes", "tiny"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert missing.returncode != 0 and "--method-dir" in missing.stderr and "Traceback" not in missing.stderr
