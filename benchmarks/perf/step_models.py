"""The models the training-step benchmarks time, built from the method's own Hydra config.

``paper`` builds the last stage of ``experiment=<method>_paper`` (the module that pretraining trains at paper
size); otherwise the last stage of ``method=<method>`` (the tiny preset). The hub text tower is replaced by a
random BERT built offline with the hub model's geometry and vocabulary (``PAPER_VOCAB``), so nothing is
downloaded and throughput does not depend on the weights. Everything else (poolers, decoder blocks, frozen
layers, text lengths, masking options) comes from the config.

Why the configs: they are the one place the presets live. The benchmarks' earlier hand-written copies had
drifted from them: 14 MELP beat queries against the paper's 12, ESI without its CoCa decoder block, MERL
training 6 text layers where the paper trains none, HeartLang excluding padding from its mask.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[2]
METHODS = ("melp", "merl", "esi", "heartlang")  # the shipped methods with a training step; classes: baselines.registry
#: vocabulary of the hub model each paper text preset names (as tests/baselines/test_paper_counts.py pins them)
PAPER_VOCAB = {"heart_bert": 30522, "medcpt": 30522, "biolinkbert": 28895}
TINY_VOCAB = 300
#: stage keys the stage function consumes itself; the rest are the module's keyword arguments
STAGE_ONLY_KEYS = frozenset(
    {"name", "_target_", "data", "zero_shot", "text_from", "ecg_from", "vq_from", "trainer_overrides"}
)
REPORTS = [
    "sinus rhythm with premature ventricular contractions. left axis deviation. left ventricular hypertrophy with "
    "repolarization abnormality. inferior infarct, age undetermined. st depression in lateral leads, consider "
    "ischemia. prolonged qt interval. abnormal ecg.",
    "atrial fibrillation with rapid ventricular response. st depression, consider ischemia. abnormal ecg.",
    "sinus bradycardia. first degree av block. borderline ecg.",
    "sinus rhythm. normal ecg.",
    "sinus tachycardia. right bundle branch block. left anterior fascicular block. abnormal ecg.",
    "sinus rhythm. low qrs voltages in limb leads. nonspecific t wave abnormality. borderline ecg.",
    "atrial flutter with variable block. poor r wave progression, consider anterior infarct. abnormal ecg.",
    "sinus rhythm. left ventricular hypertrophy. abnormal ecg.",
]

#: (vocabulary size, paper geometry) -> a directory with that text model
TextDirs = Callable[[int, bool], Path]


def stage_config(method: str, paper: bool, method_dir: Path | None = None) -> dict[str, Any]:
    """The method's last pretraining stage, resolved, as plain Python (``experiment=<m>_paper`` or ``method=<m>``).

    ``method_dir`` is a user's directory with ``method/<m>.yaml`` (and ``experiment/<m>_paper.yaml``), as
    ``benchmarks/run.py method_dir=`` takes it (docs/adding-a-method.md)."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import MissingConfigException
    from omegaconf import OmegaConf

    overrides = [f"experiment={method}_paper" if paper else f"method={method}"]
    if method_dir is not None:  # the runner's own handling: the search path, and the directory on sys.path
        from benchmarks.run import expand_method_dir

        overrides += [a for a in expand_method_dir([f"method_dir={method_dir}"]) if a.startswith("hydra.searchpath=")]
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        try:
            cfg = compose("config", overrides=overrides)
        except MissingConfigException as err:
            where = f"configs/ or {method_dir}" if method_dir else "configs/ (a user's method: --method-dir)"
            raise SystemExit(f"no config for {overrides[0]!r} in {where}: {str(err).splitlines()[0]}") from None
    return OmegaConf.to_container(cfg.method.stages[-1], resolve=True)  # type: ignore[return-value]


def module_kwargs(stage: dict[str, Any], paper: bool, text_dirs: TextDirs) -> dict[str, Any]:
    """The stage's module arguments, with the text tower pointed at a local model of the hub model's vocabulary."""
    kw = {k: v for k, v in stage.items() if k not in STAGE_ONLY_KEYS}
    text = kw.get("text_encoder")
    if text is not None:
        if paper and text.get("name") not in PAPER_VOCAB:
            raise SystemExit(
                f"text preset {text.get('name')!r} has no known hub vocabulary size; add it to "
                f"step_models.PAPER_VOCAB (known: {sorted(PAPER_VOCAB)})"
            )
        vocab = PAPER_VOCAB[text["name"]] if paper else TINY_VOCAB
        kw["text_encoder"] = {**text, "path": str(text_dirs(vocab, paper))}
    return kw


def offline_text_dirs(root: Path) -> TextDirs:
    """Random BERT directories under ``root``, made once per (vocabulary, geometry): BERT-base at paper size."""
    from ecg_encoders.text.offline import init_text_model_dir

    made: dict[tuple[int, bool], Path] = {}

    def get(vocab: int, paper: bool) -> Path:
        if (vocab, paper) not in made:
            out = root / f"{'paper' if paper else 'tiny'}-{vocab}"
            if paper:  # filler words let the WordPiece trainer reach the hub vocabulary; reports stay whole words
                filler = [" ".join(f"zq{i * 50 + j}" for j in range(50)) for i in range(800)]
                made[vocab, paper] = init_text_model_dir(
                    REPORTS * 20 + filler,
                    out,
                    vocab_size=vocab,
                    layers=12,
                    width=768,
                    heads=12,
                    ffn_dim=3072,
                    max_positions=512,
                )
            else:
                made[vocab, paper] = init_text_model_dir(
                    REPORTS * 20, out, vocab_size=vocab, layers=4, width=128, heads=4, ffn_dim=512, max_positions=512
                )
        return made[vocab, paper]

    return get


def module_class(method: str, target: str | None = None) -> type:
    """The model class: the method's entry in ``baselines.registry``; for a method not registered there (a
    user's), ``target`` (``"module.Class"``)."""
    from baselines.registry import METHODS as REGISTRY

    if method in REGISTRY.names():
        return REGISTRY.get(method)
    if not target:
        raise SystemExit(
            f"method {method!r} is not in baselines.registry: pass --module-class module.Class "
            "(docs/adding-a-method.md)"
        )
    from ecg_data.registry import locate

    return locate(target)


def build(
    method: str, paper: bool, text_dirs: TextDirs, *, method_dir: Path | None = None, module_cls: str | None = None
) -> tuple[Any, dict[str, Any]]:
    """(module, its stage config) for ``method`` at paper size or tiny, weights seeded with 0."""
    stage = stage_config(method, paper, method_dir)
    cls = module_class(method, module_cls)
    torch.manual_seed(0)
    return cls(**module_kwargs(stage, paper, text_dirs)), stage


def add_method_args(ap: argparse.ArgumentParser, default: list[str]) -> None:
    """``--methods`` plus a user's method: ``--method-dir`` (configs and code) and ``--module-class``."""
    ap.add_argument(
        "--methods",
        nargs="+",
        default=default,
        help=f"shipped: {' '.join(METHODS)}; or a user's method with --method-dir",
    )
    ap.add_argument(
        "--method-dir",
        type=Path,
        default=None,
        help="a user's directory with method/<m>.yaml (+ experiment/<m>_paper.yaml) and its code",
    )
    ap.add_argument(
        "--module-class",
        default=None,
        help="module.Class (dotted path) of a user's method (registered methods use baselines.registry)",
    )


def trainer_config(name: str) -> dict[str, Any]:
    """``configs/trainer/<name>.yaml`` as plain Python, with the files its Hydra ``defaults:`` names merged in first
    (``gpu`` on ``_base``, ``ddp`` on ``gpu``, ...): its ``perf`` mapping and clip norm are what ``ours`` runs."""
    from omegaconf import OmegaConf

    raw = OmegaConf.load(REPO / "configs" / "trainer" / f"{name}.yaml")
    entries = list(raw.pop("defaults", None) or ["_self_"])
    parts = [raw if str(e) == "_self_" else OmegaConf.create(trainer_config(str(e))) for e in entries]
    return OmegaConf.to_container(OmegaConf.merge(*parts))  # type: ignore[return-value]


def own_clip(stage: dict[str, Any]) -> float | None:
    """The clip norm a method's stage config sets for itself (HeartLang's MSM: 3.0, its original's); None if unset."""
    return (stage.get("trainer_overrides") or {}).get("gradient_clip_val")


def clip_norm(stage: dict[str, Any], trainer: dict[str, Any]) -> float | None:
    """What training clips at: the stage's own value where its config sets one (null = none), else the trainer's."""
    overrides = stage.get("trainer_overrides") or {}
    return overrides["gradient_clip_val"] if "gradient_clip_val" in overrides else trainer.get("gradient_clip_val")


def train_step(
    module: Any,
    opt: torch.optim.Optimizer,
    batch: dict[str, Any],
    clip: float | None,
    autocast: contextlib.AbstractContextManager | None = None,
) -> None:
    """One training step as the trainer runs it: every loss, backward, gradient clipping (``clip``), optimiser."""
    with autocast or contextlib.nullcontext():
        loss = module.compute_losses(batch)["loss"]
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if clip:
        torch.nn.utils.clip_grad_norm_([p for p in module.parameters() if p.grad is not None], clip)
    opt.step()


def make_batch(module: Any, bs: int, device: torch.device | str = "cpu") -> dict[str, Any]:
    """A batch of the module's input shape: R-peaks every 0.8 s (so HeartLang finds beats) plus noise, and reports."""
    spec = module.input_spec
    t = torch.arange(spec.length, device=device) / spec.fs
    beat = torch.exp(-(((t % 0.8) - 0.4) ** 2) / (2 * 0.01**2))
    g = torch.Generator(device=device).manual_seed(0)
    ecg = beat.expand(bs, 12, -1) + 0.05 * torch.randn(bs, 12, spec.length, generator=g, device=device)
    return {"ecg": ecg, "report": [REPORTS[i % len(REPORTS)] for i in range(bs)]}


def text_towers(module: Any) -> list[Any]:
    """The module's text towers (what the original-style baseline pads to their maximum length)."""
    return [m for m in module.modules() if hasattr(m, "pad_to_max_length")]


def caption_tokens(module: Any, reports: list[str]) -> int:
    """Tokens per row of the batch's text as the module tokenises it (ESI enriches its captions first); 0 without text."""
    towers = text_towers(module)
    if not towers:
        return 0
    texts = module.captions(reports) if hasattr(module, "captions") else reports
    return int(towers[0].tokenize(texts)["input_ids"].shape[1])
