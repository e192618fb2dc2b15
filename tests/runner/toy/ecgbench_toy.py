"""A toy method and a toy evaluation backend for the runner's tests.

The method follows the stage contract of configs/method/README.md: two stages (an "init" stage
whose output feeds a "main" stage through ``inputs``), and a loader returning an object with the
ecg-eval encoder protocol. The backend writes small result files and a leaderboard without
touching real data, so the orchestration is tested in seconds. ``$TOY_CALLS`` (a file), when set,
gets one line per stage call -- an independent witness that a skipped stage really did not run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from ecg_data.paths import atomic_write_json
from ecg_data.record import DatasetNotFoundError

# torch (and ecg_eval.protocol, which imports it) are imported inside the functions, so that the CLI tests
# whose run stops before any stage (bad input) do not pay for importing torch.


def _witness(stage: str) -> None:
    if os.environ.get("TOY_CALLS"):
        with open(os.environ["TOY_CALLS"], "a") as f:
            f.write(stage + "\n")


def init_stage(
    *, run_dir: Path, inputs: dict[str, Path], pretrain_data: dict, trainer: dict, seed: int, width: int = 4
) -> Path:
    _witness("init")
    import torch

    out = run_dir / "init.pt"
    torch.save({"w": torch.randn(12, width)}, out)
    return out


def main_stage(
    *,
    run_dir: Path,
    inputs: dict[str, Path],
    pretrain_data: dict,
    trainer: dict,
    seed: int,
    steps: int = 2,
    lr: float = 0.1,
) -> Path:
    _witness("main")
    import torch

    w = torch.load(inputs["init"])["w"]
    for _ in range(steps):  # "training": shrink towards zero, deterministic given the seed
        w = w - lr * w
    out = run_dir / "checkpoints" / "last.ckpt"
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"w": w, "pretrained_on": str(pretrain_data["name"])}, out)
    return out


class ToyEncoder:
    def __init__(self, w: Any, name: str, ckpt_hash: str) -> None:
        from ecg_eval.protocol import EncoderCard, InputSpec

        self.w = w
        self.input_spec = InputSpec(preset="raw100", fs=100, length=1000)
        self.card = EncoderCard(name=name, checkpoint_hash=ckpt_hash, n_parameters=w.numel())

    def encode_ecg(self, x: Any) -> Any:
        return x.mean(-1) @ self.w

    def encode_text(self, texts: list[str]) -> Any:
        import torch

        g = torch.Generator().manual_seed(sum(map(ord, "".join(texts))))
        return torch.randn(len(texts), self.w.shape[1], generator=g)


def load(path: Path | None, name: str = "toy", width: int = 4) -> ToyEncoder:
    _witness("load")
    import torch

    if path is None:  # a method without stages: random init
        return ToyEncoder(torch.randn(12, width), name, "random")
    from ecg_data.paths import file_hash

    return ToyEncoder(torch.load(path)["w"], name, file_hash(path))


class ToyBackend:
    """Evaluation stand-in: tasks ``toy_*`` always exist (``toy_missing`` never does); other names go to ecg_data."""

    def __init__(self, *, results_dir: str, leaderboard_dir: str, eval_cfg: DictConfig) -> None:
        self.results_dir = Path(results_dir)
        self.leaderboard_path = Path(leaderboard_dir) / "README.md"
        self.eval_cfg = eval_cfg

    def check_task(self, task: str) -> None:
        if task == "toy_missing":
            raise DatasetNotFoundError("toy_missing: expected <root>/toy/RECORDS; published at https://example.org/toy")
        if not task.startswith("toy_"):
            from ecg_data.tasks import get_task

            get_task(task)

    def check_pretrain_data(self, pretrain_data: DictConfig) -> None:
        if pretrain_data.get("suite") != "synthetic":
            from ecg_data.tasks import get_task

            get_task(str(pretrain_data.task))

    def result_path(self, *, suite: str, method: str, cell: Any) -> Path:
        stem = cell.mode if cell.fraction is None else f"{cell.mode}-{cell.fraction:g}"
        return self.results_dir / suite / method / cell.task / f"{stem}-seed{cell.seed}.json"

    def is_done(self, path: Path, checkpoint_hash: str) -> bool:
        return path.is_file() and json.loads(Path(path).read_text())["checkpoint_hash"] == checkpoint_hash

    def evaluate(self, encoder: Any, *, suite: str, method: str, cell: Any, out_path: Path) -> Path:
        import torch

        g = torch.Generator().manual_seed(cell.seed)
        feats = encoder.encode_ecg(torch.randn(8, 12, 50, generator=g))
        na = cell.mode == "zero_shot" and not callable(getattr(encoder, "encode_text", None))
        atomic_write_json(
            out_path,
            {
                "method": encoder.card.name,
                "task": cell.task,
                "mode": cell.mode,
                "fraction": cell.fraction,
                "seed": cell.seed,
                "status": "not_applicable" if na else "ok",
                "score": None if na else float(feats.abs().mean()),
                "checkpoint_hash": encoder.card.checkpoint_hash,
                "pretrained_on": list(encoder.card.pretrained_on),
            },
        )
        return out_path

    def publish(self) -> Path:
        rows = sorted(str(p.relative_to(self.results_dir)) for p in self.results_dir.rglob("*.json"))
        self.leaderboard_path.parent.mkdir(parents=True, exist_ok=True)
        self.leaderboard_path.write_text("# toy leaderboard\n" + "".join(f"- {r}\n" for r in rows))
        return self.leaderboard_path
