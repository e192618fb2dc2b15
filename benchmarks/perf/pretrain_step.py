"""Training-step speed on CPU: our default step against an *original-style* baseline of the same model, as ratios.

One step = every loss of the method (``compute_losses``) + backward + AdamW step, in train mode (dropout on).
Each row runs one model in three ways, alternating step by step in this process (median per way), so the ratios
stay meaningful on a shared machine:

- ``base``: the model run the way the original code runs it -- reports padded to the original's fixed length
  (MELP 128, MERL 256, ESI 500), vocabulary logits and cross-entropy at every position, AdamW's per-tensor
  ``for`` loop (torch's CPU default), no gradient clipping unless the method's config sets one, eager, fp32. At
  paper size this matched the speed of HKU-MedAI/MELP's own code within 0-8% on CPU;
- ``ours``: our default -- reports padded to the batch's longest, logits only at real label positions
  (``PretrainModule.caption_real_positions``), the CPU trainer config's ``perf`` switches (fused AdamW,
  channels-last positional conv, integer-draw dropout masks), gradient clipping as our trainer configs, plus
  ``torch.compile`` of the towers with ``--compile``;
- ``ours@pad``: ours with the baseline's padding, so ``ours@pad / base`` is the speed-up of the compute alone.

    python -m benchmarks.perf.pretrain_step                               # MELP, tiny + paper, B=4 and 8 (~5 min on 2 cores)
    python -m benchmarks.perf.pretrain_step --methods melp merl esi heartlang --sizes paper --batches 4 8 --steps 5
        # (ESI's paper preset at B=8 needs more than 23 GB of RAM)
    python -m benchmarks.perf.pretrain_step --sizes tiny --compile        # + torch.compile (compile time reported apart)
    python -m benchmarks.perf.pretrain_step --attention                   # the older fused vs math-attention comparison
    python -m benchmarks.perf.pretrain_step --json rows.json              # rows also as JSON, saved after each row
    python -m benchmarks.perf.pretrain_step --methods my_method --method-dir DIR --module-class my_method.MyMethod --sizes tiny

Each method is built from its own config (``step_models``: the last stage of ``experiment=<m>_paper`` at paper
size, of ``method=<m>`` at tiny size) with random weights and an offline BERT of the hub model's geometry and
vocabulary (heart_bert / MedCPT 30,522, BioLinkBERT 28,895; MELP adds [BOS]); throughput does not depend on the
weights, and no download is needed. Reports are MIMIC-like, the longest ~50 tokens (ESI enriches its captions).
The original's fixed text length is the config's ``max_length`` (MELP 128, MERL 256, ESI 500); the gradient-clip
norm is the stage's own where its config sets one (HeartLang's MSM: 3.0), else ``base`` none and ``ours`` 1.0.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from benchmarks.perf.step_models import (
    TextDirs,
    add_method_args,
    build,
    caption_tokens,
    clip_norm,
    make_batch,
    offline_text_dirs,
    own_clip,
    text_towers,
    train_step,
    trainer_config,
)
from ecg_data.paths import atomic_write_json
from ecg_encoders.cpu_dropout import set_fast_cpu_dropout
from ecg_text_align.perf import adamw_impl_kwargs, compile_submodules, set_channels_last_conv


@dataclass(frozen=True)
class Way:
    """How one step is run."""

    name: str
    pad: bool  # pad reports to the original's fixed length
    real_positions: bool  # caption logits only at real labels
    optimizer_impl: str
    clip: float | None
    compiled: bool = False
    channels_last_conv: bool = False  # perf.channels_last_conv
    fast_cpu_dropout: bool = False  # perf.fast_cpu_dropout


def ways(compile_: bool, stage: dict[str, Any] | None = None) -> list[Way]:
    """base / ours / ours@pad for a method's stage config: ``ours`` runs the CPU trainer config's ``perf`` mapping
    and clip norm (configs are the one place they are set), ``base`` clips only where the method's config does."""
    trainer = trainer_config("cpu")
    perf = dict(trainer["perf"])
    ours = dict(
        optimizer_impl=str(perf["optimizer_impl"]),
        clip=clip_norm(stage or {}, trainer),
        compiled=compile_,
        channels_last_conv=bool(perf.get("channels_last_conv")),
        fast_cpu_dropout=bool(perf.get("fast_cpu_dropout")),
    )
    return [
        Way("base", True, False, "for", own_clip(stage or {})),
        Way("ours", False, True, **ours),
        Way("ours@pad", True, True, **ours),
    ]


@contextlib.contextmanager
def _way(model: Any, way: Way, compiled: dict[str, Any]):
    """Switch the model to ``way`` for one step (padding, logits, compiled sub-modules), then back."""
    for t in text_towers(model):
        t.pad_to_max_length = way.pad
    model.caption_real_positions = way.real_positions
    set_channels_last_conv(model, way.channels_last_conv)
    set_fast_cpu_dropout(model, way.fast_cpu_dropout)
    for name, impl in compiled.items():  # nn.Module.compile keeps the compiled call here; None = eager
        getattr(model, name)._compiled_call_impl = impl if way.compiled else None
    try:
        yield
    finally:
        for t in text_towers(model):
            t.pad_to_max_length = False


def one_step(model: Any, opt: torch.optim.Optimizer, batch: dict, way: Way, compiled: dict[str, Any]) -> float:
    with _way(model, way, compiled):
        t0 = time.perf_counter()
        train_step(model, opt, batch, way.clip)
        return time.perf_counter() - t0


def measure(
    model: Any, batch: dict, steps: int, compile_: bool, stage: dict[str, Any] | None = None
) -> tuple[dict[str, float], float | None]:
    """Median seconds per way (ways alternating step by step in a rotating order, one untimed warm-up each) and
    the compiled way's warm-up seconds (compilation, both paddings)."""
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opts: dict[str, torch.optim.Optimizer] = {}
    compiled: dict[str, Any] = {}
    compile_s = None
    if compile_:
        names = compile_submodules(model)
        compiled = {n: getattr(model, n)._compiled_call_impl for n in names}
    ws = ways(compile_, stage)
    for w in ws:  # one optimiser per implementation (ours and ours@pad share theirs)
        if w.optimizer_impl not in opts:
            opts[w.optimizer_impl] = torch.optim.AdamW(params, lr=1e-5, **adamw_impl_kwargs(w.optimizer_impl))
    for w in ws:  # warm-up; a compiled way compiles here (twice: both paddings)
        t0 = time.perf_counter()
        one_step(model, opts[w.optimizer_impl], batch, w, compiled)
        if w.compiled:
            compile_s = (compile_s or 0.0) + time.perf_counter() - t0
    times: dict[str, list[float]] = {w.name: [] for w in ws}
    for i in range(steps):  # the order rotates every round, so no way always follows the same one
        for w in ws[i % len(ws) :] + ws[: i % len(ws)]:
            times[w.name].append(one_step(model, opts[w.optimizer_impl], batch, w, compiled))
    return {k: statistics.median(v) for k, v in times.items()}, compile_s


def _load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def attention_rows(text_dirs: TextDirs, sizes: list[str], batch: int, steps: int) -> None:
    """The older comparison: MELP with fused SDPA attention vs the explicit math path."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    print(f"\nMELP attention (load {_load()}): fused vs math, batch {batch}, {steps} steps")
    for size in sizes:
        model, _ = build("melp", size == "paper", text_dirs)
        model.train()
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
        data = make_batch(model, batch)
        t: dict[bool, list[float]] = {True: [], False: []}
        way = Way("ours", False, True, "fused", None)
        for i in range(steps + 1):
            for fused in (True, False):
                enc = model.ecg_tower.encoder
                if hasattr(enc, "set_fused_attention"):
                    enc.set_fused_attention(fused)
                ctx = contextlib.nullcontext() if fused else sdpa_kernel([SDPBackend.MATH])
                with ctx:
                    s = one_step(model, opt, data, way, {})
                if i:
                    t[fused].append(s)
        print(f"  {size:6s} fused/math speed {statistics.median(t[False]) / statistics.median(t[True]):.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_method_args(ap, ["melp"])
    ap.add_argument("--sizes", nargs="+", default=["tiny", "paper"], choices=("tiny", "paper"))
    ap.add_argument("--batches", nargs="+", type=int, default=[4, 8])
    ap.add_argument("--steps", type=int, default=3, help="timed steps per way (tiny runs 4x as many)")
    ap.add_argument("--compile", action="store_true", help="ours with torch.compile of the towers and decoder")
    ap.add_argument("--attention", action="store_true", help="also the fused vs math attention comparison")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument(
        "--json",
        type=Path,
        default=None,
        help="also write the rows here, rewritten atomically after each row (a killed run keeps them)",
    )
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU fp32; load average {_load()}")
    header = (
        f"{'method':9s} {'size':5s} {'B':>2s} {'pad':>4s} {'len':>4s} {'base s':>7s} {'ours s':>7s} "
        f"{'ours@pad s':>10s} {'real pad x':>10s} {'equal pad x':>11s} {'compile s':>9s}  load"
    )
    with tempfile.TemporaryDirectory() as tmp:
        text_dirs = offline_text_dirs(Path(tmp))
        print(header)
        rows: list[dict[str, Any]] = []
        for method in args.methods:
            for size in args.sizes:
                model, stage = build(
                    method, size == "paper", text_dirs, method_dir=args.method_dir, module_cls=args.module_class
                )
                towers = text_towers(model)
                pad = towers[0].max_length if towers else None  # the config's max_length: the original's fixed length
                for bs in args.batches:
                    data = make_batch(model, bs)
                    steps = args.steps * (4 if size == "tiny" else 1)
                    med, comp = measure(model, data, steps, args.compile, stage)
                    real_len = caption_tokens(model, data["report"])
                    print(
                        f"{method:9s} {size:5s} {bs:2d} {pad or '-':>4} {real_len or '-':>4} {med['base']:7.3f} "
                        f"{med['ours']:7.3f} {med['ours@pad']:10.3f} {med['base'] / med['ours']:10.3f} "
                        f"{med['base'] / med['ours@pad']:11.3f} {comp if comp is not None else float('nan'):9.1f}  "
                        f"{_load()}",
                        flush=True,
                    )
                    rows.append(
                        {
                            "method": method,
                            "size": size,
                            "batch": bs,
                            "steps": steps,
                            "original_pad": pad,
                            "text_tokens": real_len,
                            "threads": torch.get_num_threads(),
                            "seconds": med,
                            "real_pad_x": med["base"] / med["ours"],
                            "equal_pad_x": med["base"] / med["ours@pad"],
                            "compile_s": comp,
                            "load_average": list(os.getloadavg()),
                            "torch": torch.__version__,
                            "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
                        }
                    )
                    if args.json:
                        atomic_write_json(args.json, rows)
                del model
        if args.attention:
            attention_rows(text_dirs, args.sizes, args.batches[0], args.steps)
    print(
        "x = base seconds / ours seconds (higher is faster); goal on 2 CPU cores (MELP paper): >= 1.6 at real "
        "padding, >= 1.15 at equal padding"
    )


if __name__ == "__main__":
    main()
