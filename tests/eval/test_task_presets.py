"""Per-task input preparation: ``InputSpec.task_presets`` resolved by ``ecg_eval.protocol.preset_for``, the one way
every mode picks a task's preset; encoders without a mapping keep the preset, keys and result fields they had."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from ecg_data.preprocess import get_preset
from ecg_eval import embeddings as E
from ecg_eval.harness import already_done, evaluate
from ecg_eval.protocol import EncoderCard, InputSpec, input_spec_dict, preset_for
from ecg_eval.results import read_result

SRC = Path(__file__).resolve().parents[2] / "packages" / "ecg-eval" / "src" / "ecg_eval"


def _enc(task_presets: dict[str, str] | None = None, preset: str = "raw100", length: int = 1000):
    return SimpleNamespace(input_spec=InputSpec(preset=preset, fs=100, length=length, task_presets=task_presets or {}))


def test_preset_for_task_name_then_dataset_then_default() -> None:
    enc = _enc({"ptbxl": "heartlang-ptbxl", "ptbxl_form": "heartlang", "csn": "heartlang-csn"})
    assert preset_for(enc, SimpleNamespace(name="ptbxl_super", dataset="ptbxl")) == "heartlang-ptbxl"
    assert preset_for(enc, SimpleNamespace(name="ptbxl_form", dataset="ptbxl")) == "heartlang"  # task name wins
    assert preset_for(enc, SimpleNamespace(name="csn_exact", dataset="csn")) == "heartlang-csn"
    assert preset_for(enc, SimpleNamespace(name="g12ec", dataset="g12ec")) == "raw100"
    assert preset_for(_enc(), SimpleNamespace(name="ptbxl_super", dataset="ptbxl")) == "raw100"
    legacy = SimpleNamespace(input_spec=SimpleNamespace(preset="melp", fs=500, length=5000))  # a spec without the field
    assert preset_for(legacy, SimpleNamespace(name="ptbxl_super", dataset="ptbxl")) == "melp"
    with pytest.raises(ValueError, match="500.* x 5000"):  # a mapped preset must give the encoder's input shape
        preset_for(_enc({"ptbxl": "melp"}), SimpleNamespace(name="ptbxl_super", dataset="ptbxl"))


def test_input_spec_mapping_is_frozen_sorted_pairs() -> None:
    spec = InputSpec("heartlang", 100, 1000, task_presets={"csn": "heartlang-csn", "cpsc2018": "heartlang-cpsc2018"})
    assert spec.task_presets == (("cpsc2018", "heartlang-cpsc2018"), ("csn", "heartlang-csn"))
    assert hash(spec) == hash(InputSpec("heartlang", 100, 1000, task_presets=spec.task_presets))
    # no mapping: the result file's input_spec has exactly the three fields it always had
    assert input_spec_dict(InputSpec("melp", 500, 5000)) == {"preset": "melp", "fs": 500, "length": 5000}
    assert input_spec_dict(spec)["task_presets"] == {"csn": "heartlang-csn", "cpsc2018": "heartlang-cpsc2018"}


def test_one_input_spec_and_card_class() -> None:
    """The pretraining base and the released-weights wrapper use ecg-eval's classes (no twin to drift)."""
    module = pytest.importorskip("ecg_text_align.module", reason="ecg-text-align not installed (ecg-eval alone)")
    released = pytest.importorskip("ecg_text_align.released")
    assert module.InputSpec is released.InputSpec is InputSpec
    assert module.EncoderCard is released.EncoderCard is EncoderCard


def test_no_module_reads_the_preset_past_preset_for() -> None:
    """Every call site goes through ``preset_for`` (protocol.py) / ``preset_key`` (embeddings.py)."""
    hits = [
        f"{p.name}:{i}"
        for p in sorted(SRC.glob("*.py"))
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if re.search(r"\w\.input_spec\.preset\b", line)
    ]
    assert hits == []


# --- through the real harness on the synthetic corpus ------------------------------------------------------------


class Recorder:
    """Records every batch ``encode_ecg`` receives; features are plain statistics of it."""

    def __init__(self, task_presets: dict[str, str] | None = None, checkpoint: str = "rec") -> None:
        self.input_spec = InputSpec(preset="raw100", fs=100, length=1000, task_presets=task_presets or {})
        self.card = EncoderCard(name="recorder", checkpoint_hash=checkpoint, n_parameters=0)
        self.seen: list[torch.Tensor] = []

    def encode_ecg(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.clone())
        return torch.stack([x.mean((1, 2)), x.std((1, 2)), x[:, 1].amax(-1), x[:, 0].amin(-1)], dim=1)


@pytest.fixture(scope="module")
def synth_tasks():
    from ecg_data.synthetic import ensure_preset
    from ecg_data.tasks import get_task

    return (
        get_task("synth_ptbxl_super", root=ensure_preset("synth-ptbxl", n=120, seed=5)),
        get_task("synth_cpsc2018", root=ensure_preset("synth-cpsc2018", n=80, seed=5)),
    )


ORDER = ("test", "train", "val")  # the order in which ``evaluate(..., "linear_probe", ...)`` embeds the splits


def _run(enc: Recorder, task, tmp_path: Path) -> dict:
    kw = dict(results_root=tmp_path / "results", n_resamples=20)
    out = evaluate(enc, task, "linear_probe", 1.0, 0, embed_cache=tmp_path / "emb", **kw)
    assert out["status"] == "ok" and already_done(enc, task, "linear_probe", 1.0, 0, **kw)  # identity reproducible
    return out


def test_each_task_is_prepared_by_its_preset_through_the_harness(synth_tasks, tmp_path: Path) -> None:
    from ecg_data.cache import cached_split, resolve_preset

    ptbxl, cpsc = synth_tasks
    mapping = {"ptbxl": "heartlang-ptbxl", "synth_cpsc2018": "heartlang-cpsc2018"}  # by dataset and by task name

    # PTB-XL: raw100 standardised with one mean/std pooled over the train split's values, the same for every split
    enc = Recorder(mapping)
    res = _run(enc, ptbxl, tmp_path)
    raw = {s: cached_split(ptbxl, s, "raw100").batch(slice(None)) for s in ORDER}
    v = raw["train"].astype(np.float64).ravel()
    mean, std = float(v.mean()), float(v.std())
    expected = np.concatenate([(raw[s] - mean) / std for s in ORDER])
    np.testing.assert_allclose(torch.cat(enc.seen).numpy(), expected, rtol=1e-5, atol=1e-5)
    fitted = resolve_preset(ptbxl, "heartlang-ptbxl")
    prep = read_result(res["result_path"])["input_preparation"]
    assert prep["preset"] == "heartlang-ptbxl" and prep["fitted_preset_key"] == fitted.key()
    assert (prep["fit"]["mean"], prep["fit"]["std"]) == pytest.approx((mean, std), rel=1e-9)
    assert res["input_spec"]["task_presets"] == mapping
    assert res["input_spec"]["preset"] == "raw100" and "input_preparation" not in res["evaluated"]  # runner-checkable
    test_ids = [str(r) for r in cached_split(ptbxl, "test", "raw100").record_ids]
    assert res["embedding_cache_keys"]["test"] == E.cache_key(
        "rec", E.dataset_fingerprint(ptbxl), test_ids, fitted.key()
    )

    # CPSC2018 (mapped by task name): every record as heartlang-cpsc2018 prepares it, computed from the reader directly
    enc = Recorder(mapping)
    res = _run(enc, cpsc, tmp_path)
    preset, reader = get_preset("heartlang-cpsc2018"), cpsc.reader()
    ids = [r for s in ORDER for r in cached_split(cpsc, s, "heartlang-cpsc2018").record_ids]
    expected = np.stack([preset.apply(reader.read(r)) for r in ids])
    np.testing.assert_allclose(torch.cat(enc.seen).numpy(), expected, rtol=1e-5, atol=1e-5)
    assert res["input_preparation"]["preset"] == "heartlang-cpsc2018" and "fit" not in res["input_preparation"]


def test_an_encoder_without_a_mapping_is_unchanged(synth_tasks, tmp_path: Path) -> None:
    from ecg_data.cache import cached_split

    ptbxl, _ = synth_tasks
    enc = Recorder()
    res = _run(enc, ptbxl, tmp_path)
    expected = np.concatenate([cached_split(ptbxl, s, "raw100").batch(slice(None)) for s in ORDER])
    np.testing.assert_array_equal(torch.cat(enc.seen).numpy(), expected)  # raw100 as it always was
    assert E.preset_key(enc, ptbxl) == E.preset_key(enc) == get_preset("raw100").key()
    test_ids = [str(r) for r in cached_split(ptbxl, "test", "raw100").record_ids]
    key = E.cache_key("rec", E.dataset_fingerprint(ptbxl), test_ids, get_preset("raw100").key())
    assert res["embedding_cache_keys"]["test"] == key
    stored = read_result(res["result_path"])
    assert stored["input_spec"] == {"preset": "raw100", "fs": 100, "length": 1000}
    assert "input_preparation" not in stored


# --- the other modes' call sites, with fakes -----------------------------------------------------------------------


class TinyNet(nn.Module):
    """A fine-tunable encoder over the fake task (class A is sample 0 of lead 0)."""

    def __init__(self, task_presets: dict[str, str]) -> None:
        super().__init__()
        self.lin = nn.Linear(16, 4)
        self.input_spec = InputSpec(preset="raw100", fs=100, length=1000, task_presets=task_presets)
        self.card = EncoderCard(name="tiny", checkpoint_hash="t1", n_parameters=0)

    def embed_ecg(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x[:, 0, :])

    @torch.no_grad()
    def encode_ecg(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed_ecg(x)


def test_finetune_and_transfer_load_the_mapped_preset(fake_task, tmp_path: Path) -> None:
    from ecg_eval.finetune import FinetuneConfig

    task, caches = fake_task  # dataset "ptbxl"
    asked: list[tuple[str, str, str]] = []

    def loader(t, split, preset):
        asked.append((t.name, split, preset))
        return caches[split]

    enc = TinyNet({"ptbxl": "heartlang"})
    cfg = FinetuneConfig(max_epochs=1, batch_size=8, device="cpu")
    res = evaluate(
        enc,
        task,
        "finetune",
        1.0,
        0,
        results_root=tmp_path / "r",
        split_loader=loader,
        n_resamples=10,
        mode_options={"finetune_config": cfg},
    )
    assert res["status"] == "ok" and sorted(asked) == [("synth_fake", s, "heartlang") for s in ("test", "train", "val")]
    assert res["input_preparation"]["preset"] == "heartlang"

    asked.clear()  # transfer: each side is loaded with its own task's preset (the target's dataset is not mapped)
    src = dataclasses.replace(
        task,
        name="synth_ptbxl_all",
        classes=["AFIB", "CRBBB", "LVH"],
        labels=task.labels.rename(columns={"A": "AFIB", "B": "CRBBB", "C": "LVH"}),
    )
    tgt = dataclasses.replace(
        task,
        name="synth_cpsc2018",
        dataset="cpsc2018",
        classes=["AF", "RBBB", "PVC"],
        labels=task.labels.rename(columns={"A": "AF", "B": "RBBB", "C": "PVC"}),
    )
    res = evaluate(
        enc,
        tgt,
        "transfer",
        1.0,
        0,
        results_root=tmp_path / "r",
        split_loader=loader,
        n_resamples=10,
        mode_options={"source": src, "train_mode": "finetune", "finetune_config": cfg},
    )
    assert res["status"] == "ok"
    assert sorted(asked) == [
        ("synth_cpsc2018", "test", "raw100"),
        ("synth_ptbxl_all", "train", "heartlang"),
        ("synth_ptbxl_all", "val", "heartlang"),
    ]
    assert {k: v["preset"] for k, v in res["input_preparation"].items()} == {"source": "heartlang", "target": "raw100"}
