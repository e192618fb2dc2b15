"""MELP training throughput (samples/s) on CPU, with and without fused attention, printed as a ratio.

One "step" = forward of all MELP losses + backward + AdamW step. "fused" runs every attention through
``scaled_dot_product_attention``'s fused CPU kernels (wav2vec2 tower, BERT, caption decoder); "unfused" forces
the explicit math path (``sdpa_kernel(SDPBackend.MATH)`` and the tower's explicit attention). Both modes run
the same model on the same batch in this process, alternating step by step (median per mode), so the ratio
stays meaningful on a shared machine.

    python benchmarks/perf/pretrain_step.py                  # tiny (batch 4, 3 steps) + paper (batch 1, 1 step)
    python benchmarks/perf/pretrain_step.py --steps 10 --paper-steps 3 --paper-batch 4
    python benchmarks/perf/pretrain_step.py --no-paper

The paper preset uses MELP's sizes (wav2vec2 d=768 × 8 layers, poolers 128×768 and 14×256, a BERT-base-sized
causal text tower with 6 of 12 layers frozen, a 6-layer width-768 decoder) with random weights: throughput
does not depend on the weights, and no download is needed.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from ecg_encoders.text.offline import init_text_model_dir
from ecg_text_align.melp import MELP

REPORTS = [
    "Sinus rhythm. Left ventricular hypertrophy. Abnormal ECG.",
    "Atrial fibrillation with rapid ventricular response. ST depression, consider ischemia. Abnormal ECG.",
    "Sinus bradycardia. First degree AV block. Borderline ECG.",
    "Sinus rhythm. Normal ECG.",
]


def build(preset: str, bert_dir: Path) -> MELP:
    torch.manual_seed(0)
    if preset == "tiny":
        pooler = {"shared_dim": 256, "caption_dim": 128, "n_queries_caption": 128, "n_queries_contrast": 14, "heads": 4}
        text = {"freeze_layers": 2}
        dec = {"decoder_layers": 6, "decoder_heads": 8}
    else:
        pooler = {"shared_dim": 256, "caption_dim": 768, "n_queries_caption": 128, "n_queries_contrast": 14, "heads": 8}
        text = {"freeze_layers": 6}
        dec = {"decoder_layers": 6, "decoder_heads": 8}
    return MELP(
        ecg_tower={"_target_": "ecg_encoders.ecg.melp_tower.build_melp_tower", "preset": "tiny" if preset == "tiny" else "melp",
                   "pooler": pooler},
        text_encoder={"_target_": "ecg_encoders.text.presets.build_text_preset", "name": "offline_default",
                      "path": str(bert_dir), "max_length": 128, **text},
        **dec,
    )


def set_fused(model: MELP, fused: bool) -> contextlib.AbstractContextManager:
    enc = model.ecg_tower.encoder
    if hasattr(enc, "set_fused_attention"):
        enc.set_fused_attention(fused)
    return contextlib.nullcontext() if fused else sdpa_kernel([SDPBackend.MATH])


def one_step(model: MELP, opt: torch.optim.Optimizer, batch: dict, fused: bool) -> float:
    """Seconds of one training step (forward + backward + AdamW) in the given attention mode."""
    with set_fused(model, fused):
        t0 = time.perf_counter()
        loss = model.compute_losses(batch)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return time.perf_counter() - t0


def throughput(model: MELP, batch: dict, steps: int) -> tuple[float, float]:
    """Median samples/s (fused, unfused), the two modes alternating step by step so that load changes on a
    shared machine hit both alike; one untimed warm-up step per mode first."""
    opt = model.configure_optimizers_for_bench()
    model.train()
    one_step(model, opt, batch, True), one_step(model, opt, batch, False)
    times: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(steps):
        for fused in (True, False):
            times[fused].append(one_step(model, opt, batch, fused))
    bs = batch["ecg"].shape[0]
    return bs / statistics.median(times[True]), bs / statistics.median(times[False])


def _opt(self: MELP) -> torch.optim.Optimizer:
    return torch.optim.AdamW(self._param_groups(), lr=self.lr, betas=self.betas)


MELP.configure_optimizers_for_bench = _opt  # type: ignore[attr-defined]  # no Trainer needed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--paper-batch", type=int, default=1)
    ap.add_argument("--paper-steps", type=int, default=1)
    ap.add_argument("--no-paper", action="store_true")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        corpus = REPORTS * 20
        dirs = {
            "tiny": init_text_model_dir(corpus, Path(tmp) / "tiny", vocab_size=300, layers=4, width=128, heads=4,
                                        ffn_dim=512, max_positions=160),
        }
        if not args.no_paper:  # BERT-base geometry (heart_bert / MedCPT: 12 layers, 768, 12 heads, FFN 3072)
            dirs["paper"] = init_text_model_dir(corpus, Path(tmp) / "paper", vocab_size=300, layers=12, width=768,
                                                heads=12, ffn_dim=3072, max_positions=160)
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")
        print(f"{'preset':8s} {'batch':>5s} {'steps':>5s} {'fused s/s':>10s} {'unfused s/s':>12s} {'fused/unfused':>14s}")
        for preset, d in dirs.items():
            bs, steps = (args.batch, args.steps) if preset == "tiny" else (args.paper_batch, args.paper_steps)
            g = torch.Generator().manual_seed(0)
            batch = {"ecg": torch.randn(bs, 12, 5000, generator=g), "report": [REPORTS[i % len(REPORTS)] for i in range(bs)]}
            model = build(preset, d)
            fused, unfused = throughput(model, batch, steps)
            n = sum(p.numel() for p in model.parameters()) / 1e6
            print(f"{preset:8s} {bs:5d} {steps:5d} {fused:10.2f} {unfused:12.2f} {fused / unfused:14.2f}   ({n:.1f}M params)")


if __name__ == "__main__":
    main()
