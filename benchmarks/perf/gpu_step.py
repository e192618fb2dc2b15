"""GPU training throughput of each paper preset: samples/s, peak memory and model FLOPs utilisation (MFU).

One step = every loss of the method (``compute_losses``) + backward + AdamW step, under bf16 autocast (what
``precision: bf16-mixed`` runs), on random inputs of the method's shape. FLOPs of one step are counted once with
``torch.utils.flop_counter.FlopCounterMode`` (matmuls and convolutions, forward + backward); MFU = FLOPs per
second / the device's dense bf16 peak (``--peak-tflops``, or a table of known GPUs by name). Each preset runs
eager and with ``torch.compile`` (the compiled run's first steps are warm-up and not timed).

    python benchmarks/perf/gpu_step.py                      # every paper preset, on the first GPU
    python benchmarks/perf/gpu_step.py --methods melp merl --batch 32 --steps 10
    python benchmarks/perf/gpu_step.py --no-compile

Without a GPU it runs the *tiny* presets on the CPU in fp32 (batch 2, 2 steps, no compile) and says so in its
first line: a check that the script works, not a measurement; MFU is then not reported. Paper presets use the
papers' sizes with random weights and BERT-base-shaped text towers built offline (throughput does not depend on
the weights; no download). Target: the whole run in under 5 minutes on one GPU.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

REPORTS = [
    "Sinus rhythm. Left ventricular hypertrophy. Abnormal ECG.",
    "Atrial fibrillation with rapid ventricular response. ST depression, consider ischemia. Abnormal ECG.",
    "Sinus bradycardia. First degree AV block. Borderline ECG.",
    "Sinus rhythm. Normal ECG.",
]
#: dense bf16 tensor-core peaks (TFLOP/s, without sparsity) from the vendors' data sheets
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0, "L4": 121.0,
                    "RTX 4090": 165.0, "A6000": 155.0, "V100": 125.0}
METHODS = ("melp", "merl", "esi", "heartlang")


def _text_dir(root: Path, paper: bool) -> Path:
    from ecg_encoders.text.offline import init_text_model_dir

    geo = dict(layers=12, width=768, heads=12, ffn_dim=3072) if paper else dict(layers=2, width=64, heads=2, ffn_dim=128)
    return init_text_model_dir(REPORTS * 20, root / ("paper" if paper else "tiny"), vocab_size=300, max_positions=512, **geo)


def _text(path: Path, **kw: Any) -> dict[str, Any]:
    return {"_target_": "ecg_encoders.text.presets.build_text_preset", "name": "offline_default", "path": str(path), **kw}


def build(method: str, paper: bool, text_dir: Path) -> tuple[Any, int]:
    """(module, input length in samples) for a method at paper size (or tiny)."""
    torch.manual_seed(0)
    if method == "melp":
        from ecg_text_align.melp import MELP

        pooler = ({"shared_dim": 256, "caption_dim": 768, "n_queries_caption": 128, "n_queries_contrast": 14, "heads": 8}
                  if paper else None)
        tower = {"_target_": "ecg_encoders.ecg.melp_tower.build_melp_tower", "preset": "melp" if paper else "tiny"}
        if pooler:
            tower["pooler"] = pooler
        return MELP(ecg_tower=tower, text_encoder=_text(text_dir, freeze_layers=6 if paper else 1, max_length=128),
                    shared_dim=256 if paper else 32, decoder_layers=6 if paper else 1,
                    decoder_heads=8 if paper else 2), 5000
    if method == "merl":
        from baselines.merl.model import MERL

        return MERL(ecg_encoder={"_target_": "ecg_encoders.ecg.resnet1d.build_resnet18_1d", "preset": "merl" if paper else "tiny"},
                    text_encoder=_text(text_dir, causal=False, add_trailing_cls=False, pooling="pooler",
                                       freeze_layers=6 if paper else 1, max_length=256 if paper else 64),
                    proj_hidden=256 if paper else 16), 5000
    if method == "esi":
        from baselines.esi.model import ESI

        return ESI(ecg_encoder={"_target_": "ecg_encoders.ecg.convnextv2_1d.build_convnextv2_1d", "preset": "base" if paper else "tiny"},
                   text_encoder=_text(text_dir, causal=True, add_trailing_cls=True, pooling="last", freeze_layers=0,
                                      max_length=500 if paper else 64),
                   decoder_layers=6 if paper else 1, decoder_heads=8 if paper else 2), 5000
    if method == "heartlang":
        from baselines.heartlang.model import HeartLangMSM

        return HeartLangMSM(preset="base" if paper else "tiny", vq_preset="base" if paper else "tiny"), 1000
    raise KeyError(f"unknown method {method!r}; valid: {METHODS}")


def _batch(method: str, bs: int, length: int, device: torch.device) -> dict[str, Any]:
    t = torch.arange(length, device=device) / (100 if method == "heartlang" else 500)
    beat = torch.exp(-((t % 0.8) - 0.4) ** 2 / (2 * 0.01**2))  # R-peaks every 0.8 s, so HeartLang finds beats
    g = torch.Generator(device=device).manual_seed(0)
    ecg = beat.expand(bs, 12, -1) + 0.05 * torch.randn(bs, 12, length, generator=g, device=device)
    return {"ecg": ecg, "report": [REPORTS[i % len(REPORTS)] for i in range(bs)]}


def _step_fn(module: Any, opt: torch.optim.Optimizer, bf16: bool, device: torch.device, compiled: bool):
    forward = torch.compile(module.compute_losses) if compiled else module.compute_losses
    amp = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext

    def step(batch: dict[str, Any]) -> None:
        with amp():
            loss = forward(batch)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(method: str, *, paper: bool, batch: int, steps: int, warmup: int, compiled: bool, device: torch.device,
            bf16: bool, text_dir: Path) -> dict[str, Any]:
    module, length = build(method, paper, text_dir)
    module.to(device).train()
    opt = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=1e-5)
    data = _batch(method, batch, length, device)
    step = _step_fn(module, opt, bf16, device, compiled)
    with FlopCounterMode(display=False) as fc:  # eager, one step: the model's FLOPs (compile does not change them)
        _step_fn(module, opt, bf16, device, False)(data)
    flops = fc.get_total_flops()
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
    return {"method": method, "preset": "paper" if paper else "tiny", "compile": compiled, "batch": batch,
            "steps": steps, "step_s": secs, "samples_per_s": batch / secs, "tflop_per_step": flops / 1e12,
            "achieved_tflops": flops / secs / 1e12,
            "peak_mem_gib": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None,
            "params_m": sum(p.numel() for p in module.parameters()) / 1e6}


def peak_tflops(device: torch.device, given: float | None) -> float | None:
    if given:
        return given
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--batch", type=int, default=None, help="per-step batch (default 16 on GPU, 2 on CPU)")
    ap.add_argument("--steps", type=int, default=None, help="timed steps (default 8 on GPU, 2 on CPU)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first (compile happens here)")
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--peak-tflops", type=float, default=None, help="the device's dense bf16 peak, TFLOP/s")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows to this JSON file")
    args = ap.parse_args()
    device = torch.device(args.device)
    gpu = device.type == "cuda"
    paper, bf16 = gpu, gpu
    batch, steps = args.batch or (16 if gpu else 2), args.steps or (8 if gpu else 2)
    compiles = [False] if args.no_compile or not gpu else [False, True]
    peak = peak_tflops(device, args.peak_tflops)
    if gpu:
        print(f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}, bf16 autocast, paper presets, "
              f"batch {batch}, {steps} timed steps; MFU against {peak or '?'} TFLOP/s bf16 peak")
    else:
        print(f"NO GPU: tiny presets on the CPU in fp32, batch {batch}, {steps} steps, no torch.compile -- a check that "
              "the script runs, not a GPU measurement (no MFU)")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        text_dir = _text_dir(Path(tmp), paper)
        print(f"{'method':10s} {'compile':>7s} {'samples/s':>10s} {'step ms':>8s} {'GFLOP/step':>10s} "
              f"{'TFLOP/s':>8s} {'MFU':>6s} {'peak GiB':>8s} {'params M':>8s}")
        for method in args.methods:
            for compiled in compiles:
                r = measure(method, paper=paper, batch=batch, steps=steps, warmup=args.warmup if gpu else 1,
                            compiled=compiled, device=device, bf16=bf16, text_dir=text_dir)
                r["mfu"] = r["achieved_tflops"] / peak if peak else None
                r["device"] = torch.cuda.get_device_name(device) if gpu else "cpu"
                rows.append(r)
                mfu = f"{100 * r['mfu']:5.1f}%" if r["mfu"] is not None else "   n/a"
                mem = f"{r['peak_mem_gib']:8.2f}" if r["peak_mem_gib"] is not None else "     n/a"
                print(f"{method:10s} {str(compiled):>7s} {r['samples_per_s']:10.2f} {1000 * r['step_s']:8.1f} "
                      f"{1000 * r['tflop_per_step']:10.1f} {r['achieved_tflops']:8.3f} {mfu} {mem} {r['params_m']:8.1f}")
                del r
                if gpu:
                    torch.cuda.empty_cache()
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
