"""DDP through ``benchmarks/run.py`` as a user launches it: 2 gloo processes on CPU (Lightning's own launcher,
``trainer=ddp trainer.devices=2 trainer.accelerator=cpu``).

- MELP end to end (default set): one set of result files, each events line once, one ``last.ckpt`` per stage
  (no ``-v1``), the checkpoint loads in a single process, rank 1 says it leaves evaluation to rank 0.
- Global-batch equivalence: MELP's contrastive stage with W=2 ranks x B equals one process with W*B (same data
  order) within 1e-5 on every weight after 3 steps. The per-device parts (MELP's local beat-sentence loss and the
  caption loss normalisation) are switched off by weight here and tested separately (tests/ddp/test_per_device.py).
- The other methods (slow): each trains under DDP and publishes its row.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest
import torch

DDP = ["trainer=ddp", "trainer.devices=2", "trainer.accelerator=cpu", "trainer.precision=32-true"]
QUICK = [
    "trainer.val_check_interval=null",
    "trainer.check_val_every_n_epoch=null",
    "trainer.enable_progress_bar=false",
    "pretrain_data.n=96",
    "dataset.tasks=[synth_ptbxl_super]",
    "eval=quick",
    "eval.bootstrap=20",
    "eval.fractions=[1.0]",
    "trainer.log_every_n_steps=1",
]
MELP_TINY = [
    "method=melp",
    "trainer.max_steps=2",
    "method.stages.0.steps=3",
    "method.stages.0.batch_size=8",
    "method.stages.0.warmup_steps=1",
    "method.stages.1.trainer_overrides.max_steps=2",
    "method.stages.1.data.batch_size=4",
    "method.stages.2.data.batch_size=4",
]


def _store(tmp: Path) -> list[str]:
    return [f"run_store={tmp / 'runs'}", f"output_dir={tmp / 'out'}"]


def _events(tmp: Path) -> list[dict]:
    return [json.loads(l) for l in (tmp / "runs" / "events.jsonl").read_text().splitlines() if l.strip()]


def test_melp_trains_under_ddp_and_rank0_alone_evaluates(tmp_path: Path, cli) -> None:
    from ecg_text_align.module import PretrainModule

    out = cli([*DDP, *QUICK, *MELP_TINY, *_store(tmp_path), "stages=[pretrain,zero_shot,publish]"], timeout=1500)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-4000:]
    assert "Traceback" not in log
    assert "done on rank 1; global rank 0 evaluates" in log
    assert log.count("export: ran ->") == 1, "the portable model directory has one writer, global rank 0"
    results = sorted((tmp_path / "out" / "results").rglob("*.json"))
    assert [p.name for p in results if p.parent.parent.name == "melp"] == ["zero_shot-seed0.json"]
    # the synthetic table's reference rows, scored by rank 0 with the method (ecg_eval.references)
    assert {p.parent.parent.name for p in results} == {"melp", "oracle", "chance"}
    events = [(e["stage"], e["status"]) for e in _events(tmp_path) if not e["run"].startswith("reference/")]
    assert events == [
        ("pretrain/text_lm", "ran"),
        ("pretrain/stage0", "ran"),
        ("pretrain/melp", "ran"),
        ("pretrain", "ran"),
        ("zero_shot", "ran"),
        ("publish", "ran"),
    ]
    run_dir = next((tmp_path / "runs" / "melp").glob("*-seed0"))
    ckpts = sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*.ckpt"))
    assert ckpts == ["melp/checkpoints/last.ckpt", "stage0/checkpoints/last.ckpt", "text_lm/checkpoints/last.ckpt"]
    state = torch.load(run_dir / "melp/checkpoints/last.ckpt", map_location="cpu", weights_only=True)
    assert state["global_step"] == 2
    model = PretrainModule.from_checkpoint(run_dir / "melp/checkpoints/last.ckpt")  # one process, no group
    assert model.encode_ecg(torch.randn(2, 12, 5000)).shape[0] == 2
    metrics = (run_dir / "melp" / "logs" / "version_0" / "metrics.csv").read_text()
    assert "train/loss" in metrics  # the CSV logger of the logger group, written once (rank 0)
    assert (run_dir / "text_lm" / "text_model" / "config.json").is_file()
    prov = json.loads((run_dir / "text_lm" / "text_model" / "ecglang_text_model.json").read_text())
    assert prov["world_size"] == 2 and prov["steps"] == 3


# ----- equivalence: 2 ranks x B == 1 process x 2B ------------------------------------------------------------------
#: MELP's contrastive (gathered) part only, dropout off everywhere, so the two runs must agree to rounding
EXACT = [
    "+method.stages.0.model_config.dropout=0.0",
    "method.stages.2.caption_weight=0.0",
    "method.stages.2.local_weight=0.0",
    "+method.stages.2.ecg_tower.dropout=0.0",
    "method.stages.2.ecg_tower.attention_dropout=0.0",
    "+method.stages.2.ecg_tower.dropout_input=0.0",
    "+method.stages.2.ecg_tower.dropout_features=0.0",
    "method.stages.2.warmup_steps=1",
    "method.stages.2.lead_mask_p=0.5",
    "+method.stages.2.adam_eps=1.0e-4",
]
# adam_eps: with torch's 1e-8, AdamW's first steps are ~lr * sign(g), so a coordinate whose gradient is ~0 flips by
# up to 2 lr on a rounding difference (seen: 1.7e-5 on one of 768 conv weights); 1e-4 keeps the update continuous
# in the gradient, and the comparison then tests what DDP guarantees: the same gradients


def _run_dir(overrides: list[str]) -> Path:
    import sys

    from hydra import compose, initialize_config_dir

    repo = Path(__file__).resolve().parents[2]
    sys.path.insert(0, str(repo))
    from benchmarks.pipeline.store import RunStore

    with initialize_config_dir(config_dir=str(repo / "configs"), version_base="1.3"):
        cfg = compose("config", overrides=overrides)
    return RunStore(Path(str(cfg.run_store))).run_dir(cfg)


def test_two_ranks_times_b_equal_one_process_times_2b(tmp_path: Path, cli) -> None:
    base = [*QUICK, *MELP_TINY, *EXACT, *_store(tmp_path), "stages=[pretrain]", "trainer.max_steps=3"]
    single = [*base, "method.stages.2.data.batch_size=8"]
    double = [*DDP, *base, "method.stages.2.data.batch_size=4"]
    one = cli(single, timeout=1200)
    assert one.returncode == 0, (one.stdout + one.stderr)[-4000:]
    # the DDP run starts from the very same text model and stage-0 checkpoint: only the MELP stage differs
    src, dst = _run_dir(single), _run_dir(double)
    assert src != dst
    for stage in ("text_lm", "stage0"):
        shutil.copytree(src / stage, dst / stage)
    two = cli(double, timeout=1200)
    assert two.returncode == 0, (two.stdout + two.stderr)[-4000:]
    assert [(e["stage"], e["status"]) for e in _events(tmp_path)][-4:] == [
        ("pretrain/text_lm", "skipped"),
        ("pretrain/stage0", "skipped"),
        ("pretrain/melp", "ran"),
        ("pretrain", "ran"),
    ]
    a = torch.load(src / "melp/checkpoints/last.ckpt", map_location="cpu", weights_only=True)
    b = torch.load(dst / "melp/checkpoints/last.ckpt", map_location="cpu", weights_only=True)
    assert a["global_step"] == b["global_step"] == 3
    init = torch.load(src / "stage0/checkpoints/last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    moved = 0
    for k, v in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][k], v, atol=1e-5, rtol=0, msg=lambda m, k=k: f"{k}: {m}")
        if k in init and init[k].shape == v.shape and (init[k] - v).abs().max() > 1e-4:
            moved += 1
    assert moved > 10, "the weights hardly moved: the comparison would be vacuous"


@pytest.mark.slow
@pytest.mark.parametrize("method", ["merl", "esi", "heartlang", "random_init"])
def test_other_methods_train_under_ddp(method: str, tmp_path: Path, cli) -> None:
    short = {
        "merl": [
            "method.stages.0.steps=3",
            "method.stages.0.batch_size=8",
            "method.stages.0.warmup_steps=1",
            "method.stages.1.data.batch_size=4",
        ],
        "esi": [
            "method.stages.0.steps=3",
            "method.stages.0.batch_size=8",
            "method.stages.0.warmup_steps=1",
            "method.stages.1.data.batch_size=4",
        ],
        "heartlang": [
            "method.stages.0.trainer_overrides.max_steps=2",
            "method.stages.0.data.batch_size=4",
            "method.stages.1.data.batch_size=4",
        ],
        "random_init": [],
    }[method]
    out = cli(
        [
            *DDP,
            *QUICK,
            f"method={method}",
            "trainer.max_steps=2",
            *short,
            *_store(tmp_path),
            "stages=[pretrain,zero_shot,publish]",
        ],
        timeout=2400,
    )
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    own = [p.name for p in (tmp_path / "out" / "results").rglob("*.json") if p.parent.parent.name == method]
    assert own == ["zero_shot-seed0.json"]
    counts = Counter((e["stage"], e["status"]) for e in _events(tmp_path) if not e["run"].startswith("reference/"))
    assert all(n == 1 for n in counts.values()), counts
    assert not list((tmp_path / "runs").rglob("*-v1.ckpt"))


@pytest.mark.slow
def test_multirun_with_ddp_each_job_launches_its_own_ranks(tmp_path: Path, cli) -> None:
    """``-m seed=0,1`` under Lightning's launcher: each job's children run that job only (not the sweep), and the
    second job launches fresh ranks instead of waiting for the first job's."""
    short = [
        "method=heartlang",
        "method.stages.0.trainer_overrides.max_steps=2",
        "method.stages.0.data.batch_size=4",
        "method.stages.1.data.batch_size=4",
        "trainer.max_steps=2",
    ]
    out = cli(["-m", *DDP, *QUICK, *short, *_store(tmp_path), "stages=[pretrain]", "seed=0,1"], timeout=2400)
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    runs = sorted(
        p.name.split("-")[-1] for p in (tmp_path / "runs" / "heartlang").glob("*/COMPLETE.json") for p in [p.parent]
    )
    assert runs == ["seed0", "seed1"]
    events = [(e["run"].split("-")[-1], e["stage"], e["status"]) for e in _events(tmp_path)]
    assert events == [
        (s, st, "ran") for s in ("seed0", "seed1") for st in ("pretrain/vqhbr", "pretrain/msm", "pretrain")
    ]


@pytest.mark.slow
def test_torchrun_external_launcher(tmp_path: Path) -> None:
    """``torchrun --nproc_per_node 2 benchmarks/run.py ...``: the launcher starts both ranks, Lightning must not
    start more; rank 0 alone evaluates and writes events."""
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    src = [str(repo / "packages" / p / "src") for p in ("ecg-data", "ecg-encoders", "ecg-text-align", "ecg-eval")]
    env["PYTHONPATH"] = os.pathsep.join([*src, str(repo), env.get("PYTHONPATH", "")])
    merl = [
        "method=merl",
        "trainer.max_steps=2",
        "method.stages.0.steps=3",
        "method.stages.0.batch_size=8",
        "method.stages.0.warmup_steps=1",
        "method.stages.1.data.batch_size=4",
    ]
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(repo / "benchmarks" / "run.py"),
        *DDP,
        *QUICK,
        *merl,
        *_store(tmp_path),
        "stages=[pretrain,zero_shot,publish]",
    ]
    out = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=2400)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-4000:]
    assert "done on rank 1; global rank 0 evaluates" in log
    own = [p.name for p in (tmp_path / "out" / "results").rglob("*.json") if p.parent.parent.name == "merl"]
    assert own == ["zero_shot-seed0.json"]
    counts = Counter((e["stage"], e["status"]) for e in _events(tmp_path) if not e["run"].startswith("reference/"))
    assert all(n == 1 for n in counts.values()), counts


def test_stage0_validation_loss_under_ddp(tmp_path: Path, cli) -> None:
    """MELP stage 0 selecting on the corpus's validation loss with 2 ranks: each rank scores its shard (CMSC
    gathers across ranks in validation too), the epoch means are reduced, and one best checkpoint is written."""
    out = cli([*DDP, *QUICK, "method=melp_stage0", "+method.stages.0.select_on=val_loss", "method.stages.0.data.batch_size=4",
               "trainer.max_steps=-1", "trainer.max_epochs=2", "trainer.check_val_every_n_epoch=1",
               *_store(tmp_path), "stages=[pretrain]"], timeout=1200)  # fmt: skip
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-4000:]
    run_dir = next((tmp_path / "runs" / "melp_stage0").glob("*-seed0"))
    ckpts = sorted(p.name for p in (run_dir / "stage0" / "checkpoints").glob("*.ckpt"))
    assert ckpts == ["best.ckpt", "last.ckpt"]
    rows = (run_dir / "stage0" / "logs" / "version_0" / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    col = header.index("val/loss")
    vals = [float(r.split(",")[col]) for r in rows[1:] if r.split(",")[col]]
    assert len(vals) == 2 and all(v == v for v in vals)  # one reduced value per epoch
    last = torch.load(run_dir / "stage0" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    state = next(
        v for k, v in last["callbacks"].items() if k.startswith("ModelCheckpoint") and v.get("monitor") == "val/loss"
    )
    assert float(state["best_model_score"]) == pytest.approx(min(vals))
