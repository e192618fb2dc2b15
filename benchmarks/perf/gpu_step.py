"""GPU training throughput of each paper preset: samples/s, peak memory and model FLOPs utilisation (MFU).

One step is what our GPU trainer runs: every loss of the method (``compute_losses``) + backward + gradient
clipping + AdamW step, under bf16 autocast (``precision: bf16-mixed``), with ``configs/trainer/gpu.yaml``'s
``perf`` mapping (``ecg_text_align.perf.apply_perf``: fused AdamW, ...) and clip norm (or the method's own, where
its config sets one), on random inputs of the method's shape. The models are the last stages of
``experiment=<m>_paper``, built by ``step_models`` from the configs with offline BERT towers of the hub models'
geometry and vocabulary. FLOPs of one step are counted once with ``torch.utils.flop_counter.FlopCounterMode``
(matmuls and convolutions, forward + backward, eager); MFU = FLOPs per second / the device's dense bf16 peak
(``--peak-tflops``, or a table of known GPUs by name). Each preset runs eager and compiled, compiled the way
``perf.compile: true`` compiles (``compile_submodules``: towers and decoder); compilation happens in the untimed
warm-up steps.

    python -m benchmarks.perf.gpu_step                      # every paper preset, on the first GPU
    python -m benchmarks.perf.gpu_step --methods melp merl --batch 32 --steps 10
    python -m benchmarks.perf.gpu_step --no-compile

Without a GPU it runs the *tiny* presets (``method=<m>``) on the CPU in fp32 (batch 2, 2 steps, no compile) and
says so in its first line: a check that the script works, not a measurement; MFU is then not reported.
``--paper`` runs the paper presets on the CPU under bf16 autocast instead (about a minute for the four at batch 2
on 2 cores): a pre-flight of the GPU path before a GPU job. Throughput does not depend on the weights; nothing
is downloaded. Target: the whole run in under 5 minutes on one GPU.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

import benchmarks.perf.step_models as sm
from ecg_data.paths import atomic_write_json
from ecg_text_align.perf import adamw_impl_kwargs, apply_perf, compile_submodules

#: dense bf16 tensor-core peaks (TFLOP/s, without sparsity) from the vendors' data sheets
PEAK_BF16_TFLOPS = {
    "H200": 989.0,
    "H100": 989.0,
    "A100": 312.0,
    "L40S": 362.0,
    "A10": 125.0,
    "L4": 121.0,
    "RTX 4090": 165.0,
    "A6000": 155.0,
    "V100": 125.0,
}
METHODS = sm.METHODS


def _step_fn(module: Any, opt: torch.optim.Optimizer, bf16: bool, device: torch.device, clip: float | None):
    def step(batch: dict[str, Any]) -> None:
        sm.train_step(module, opt, batch, clip, torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else None)

    return step


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(
    method: str,
    *,
    paper: bool,
    batch: int,
    steps: int,
    warmup: int,
    compiled: bool,
    device: torch.device,
    bf16: bool,
    text_dirs: sm.TextDirs,
    trainer: dict[str, Any],
    method_dir: Path | None = None,
    module_cls: str | None = None,
) -> dict[str, Any]:
    module, stage = sm.build(method, paper, text_dirs, method_dir=method_dir, module_cls=module_cls)
    module.to(device).train()
    perf = dict(trainer.get("perf") or {})
    apply_perf(module, {k: v for k, v in perf.items() if k != "compile"})  # compiled: per row, below
    opt = torch.optim.AdamW(
        [p for p in module.parameters() if p.requires_grad],
        lr=1e-5,
        **adamw_impl_kwargs(getattr(module, "optimizer_impl", "fused")),
    )
    clip = sm.clip_norm(stage, trainer)
    data = sm.make_batch(module, batch, device)
    step = _step_fn(module, opt, bf16, device, clip)
    with FlopCounterMode(display=False) as fc:  # eager, one step: the model's FLOPs (compile does not change them)
        step(data)
    flops = fc.get_total_flops()
    if compiled:
        compile_submodules(module, **dict(perf.get("compile_options") or {}))
    for _ in range(warmup):
        step(data)
    _sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step(data)
    _sync(device)
    secs = (time.perf_counter() - t0) / steps
    return {
        "method": method,
        "preset": "paper" if paper else "tiny",
        "compile": compiled,
        "batch": batch,
        "steps": steps,
        "text_tokens": sm.caption_tokens(module, data["report"]),
        "clip": clip,
        "optimizer_impl": getattr(module, "optimizer_impl", None),
        "step_s": secs,
        "samples_per_s": batch / secs,
        "tflop_per_step": flops / 1e12,
        "achieved_tflops": flops / secs / 1e12,
        "peak_mem_gib": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None,
        "params_m": sum(p.numel() for p in module.parameters()) / 1e6,
    }


def peak_tflops(device: torch.device, given: float | None) -> float | None:
    if given:
        return given
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sm.add_method_args(ap, list(METHODS))
    ap.add_argument("--batch", type=int, default=None, help="per-step batch (default 16 on GPU, 2 on CPU)")
    ap.add_argument("--steps", type=int, default=None, help="timed steps (default 8 on GPU, 2 on CPU)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first (compile happens here)")
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--peak-tflops", type=float, default=None, help="the device's dense bf16 peak, TFLOP/s")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows to this JSON file")
    ap.add_argument(
        "--paper",
        action="store_true",
        help="paper presets on the CPU too (bf16 autocast): a pre-flight of the GPU path, not a measurement",
    )
    args = ap.parse_args()
    device = torch.device(args.device)
    gpu = device.type == "cuda"
    paper = bf16 = gpu or args.paper
    batch, steps = args.batch or (16 if gpu else 2), args.steps or (8 if gpu else 2)
    compiles = [False] if args.no_compile or not gpu else [False, True]
    peak = peak_tflops(device, args.peak_tflops)
    if gpu:
        print(
            f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}, bf16 autocast, paper presets, "
            f"batch {batch}, {steps} timed steps; MFU against {peak or '?'} TFLOP/s bf16 peak"
        )
    else:
        what = "paper presets under bf16 autocast" if paper else "tiny presets in fp32"
        print(
            f"NO GPU: {what} on the CPU, batch {batch}, {steps} steps, no torch.compile -- a check that "
            "the script runs, not a GPU measurement (no MFU)"
        )
    rows = []
    trainer = sm.trainer_config("gpu")
    with tempfile.TemporaryDirectory() as tmp:
        text_dirs = sm.offline_text_dirs(Path(tmp))
        print(
            f"{'method':10s} {'compile':>7s} {'samples/s':>10s} {'step ms':>8s} {'GFLOP/step':>10s} "
            f"{'TFLOP/s':>8s} {'MFU':>6s} {'peak GiB':>8s} {'params M':>8s} {'text tok':>8s}"
        )
        for method in args.methods:
            for compiled in compiles:
                r = measure(
                    method,
                    paper=paper,
                    batch=batch,
                    steps=steps,
                    warmup=args.warmup if gpu else 1,
                    compiled=compiled,
                    device=device,
                    bf16=bf16,
                    text_dirs=text_dirs,
                    trainer=trainer,
                    method_dir=args.method_dir,
                    module_cls=args.module_class,
                )
                r["mfu"] = r["achieved_tflops"] / peak if peak else None
                r["device"] = torch.cuda.get_device_name(device) if gpu else "cpu"
                rows.append(r)
                mfu = f"{100 * r['mfu']:5.1f}%" if r["mfu"] is not None else "   n/a"
                mem = f"{r['peak_mem_gib']:8.2f}" if r["peak_mem_gib"] is not None else "     n/a"
                print(
                    f"{method:10s} {str(compiled):>7s} {r['samples_per_s']:10.2f} {1000 * r['step_s']:8.1f} "
                    f"{1000 * r['tflop_per_step']:10.1f} {r['achieved_tflops']:8.3f} {mfu} {mem} {r['params_m']:8.1f} "
                    f"{r['text_tokens'] or '-':>8}",
                    flush=True,
                )
                del r
                if gpu:
                    torch.cuda.empty_cache()
    if args.json:
        atomic_write_json(args.json, rows)


if __name__ == "__main__":
    main()
