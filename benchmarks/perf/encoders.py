"""Encoder throughput on CPU: forward and forward+backward samples/s of every registered ECG encoder.

    python -m benchmarks.perf.encoders                       # all encoders, tiny presets (< 1 min)
    python -m benchmarks.perf.encoders --presets tiny paper  # + paper presets (minutes on 2 cores)
    python -m benchmarks.perf.encoders --encoders wav2vec2 --presets melp --reps 1
    python -m benchmarks.perf.encoders --batch 8 --reps 3 --json runs/perf/encoders.json

Inputs are (batch, 12, encoder.length) at the encoder's own sampling rate (5000 samples at 500 Hz for
the wav2vec2 tower). Encoders with ``set_fused_attention`` are measured twice, with PyTorch's fused
``scaled_dot_product_attention`` and with explicit softmax(QK^T)V attention; the ``fused speed-up``
columns are the ratio of the two measured in the same run (never compared across runs/machines).
Forward runs in eval mode under ``torch.no_grad()``; forward+backward in train mode on
``pooled.pow(2).mean()``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

from ecg_encoders.registry import ECG_ENCODERS


def _median(xs: list[float]) -> float:
    xs = sorted(xs)
    return xs[len(xs) // 2]


def bench_model(model: torch.nn.Module, modes: list[str], batch: int, reps: int, warmup: int) -> dict[str, float]:
    """Samples/s per ``fwd_<mode>`` / ``fwdbwd_<mode>``.

    Modes are interleaved rep by rep (fused, explicit, fused, ...) so load drift on a shared machine
    hits both alike; the median of ``reps`` is reported.
    """
    x = torch.randn(batch, 12, int(model.length))

    def set_mode(mode: str) -> None:
        if hasattr(model, "set_fused_attention"):
            model.set_fused_attention(mode != "explicit")

    def fwd() -> None:
        with torch.no_grad():
            model(x)

    def fwd_bwd() -> None:
        out = model(x)
        out.pooled.float().pow(2).mean().backward()
        model.zero_grad(set_to_none=True)

    result: dict[str, float] = {}
    for kind, fn, train in (("fwd", fwd, False), ("fwdbwd", fwd_bwd, True)):
        model.train(train)
        times: dict[str, list[float]] = {m: [] for m in modes}
        for m in modes:
            set_mode(m)
            for _ in range(warmup):
                fn()
        for _ in range(reps):
            for m in modes:
                set_mode(m)
                t0 = time.perf_counter()
                fn()
                times[m].append(time.perf_counter() - t0)
        for m in modes:
            result[f"{kind}_{m}"] = batch / _median(times[m])
    return result


def run(
    encoders: list[str] | None, presets: list[str], batch: int, reps: int, warmup: int, attention: str
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for name in encoders or ECG_ENCODERS.names():
        try:
            factory = ECG_ENCODERS.get(name)
            module = sys.modules[factory.__module__]
        except (ImportError, AttributeError) as err:
            rows.append(dict(encoder=name, preset="-", status=f"missing ({err})"))
            print(f"[skip] {name}: module missing ({err})", file=sys.stderr)
            continue
        chosen: list[str] = []
        for p in presets:
            chosen += list(module.PAPER_PRESETS) if p == "paper" else [p]
        for preset in dict.fromkeys(chosen):
            if preset not in module.PRESETS:
                rows.append(dict(encoder=name, preset=preset, status="no such preset"))
                continue
            torch.manual_seed(0)
            model = factory(preset=preset)
            n_params = sum(p.numel() for p in model.parameters())
            row: dict[str, Any] = dict(
                encoder=name, preset=preset, params=n_params, length=int(model.length), status="ok"
            )
            has_flag = hasattr(model, "set_fused_attention")
            modes = (
                ["fused", "explicit"] if has_flag and attention == "both" else [attention if has_flag else "default"]
            )
            row.update(bench_model(model, modes, batch, reps, warmup))
            print(
                f"[done] {name}/{preset}: "
                + ", ".join(f"{k} {v:.2f}/s" for k, v in row.items() if k.startswith("fwd")),
                file=sys.stderr,
            )
            if "fwd_fused" in row and "fwd_explicit" in row:
                row["fused_speedup_fwd"] = row["fwd_fused"] / row["fwd_explicit"]
                row["fused_speedup_fwdbwd"] = row["fwdbwd_fused"] / row["fwdbwd_explicit"]
            rows.append(row)
            del model
    return rows


def _table(rows: list[dict[str, Any]]) -> str:
    from tabulate import tabulate

    def g(r: dict[str, Any], k: str, fmt: str = "{:.2f}") -> str:
        v = r.get(k)
        return "-" if v is None else fmt.format(v)

    out = []
    for r in rows:
        fwd = r.get("fwd_fused", r.get("fwd_default", r.get("fwd_explicit")))
        fb = r.get("fwdbwd_fused", r.get("fwdbwd_default", r.get("fwdbwd_explicit")))
        out.append(
            [
                r["encoder"],
                r["preset"],
                g(r, "params", "{:,}"),
                g(r, "length", "{}"),
                "-" if fwd is None else f"{fwd:.2f}",
                "-" if fb is None else f"{fb:.2f}",
                g(r, "fwd_explicit"),
                g(r, "fwdbwd_explicit"),
                g(r, "fused_speedup_fwd", "{:.2f}x"),
                g(r, "fused_speedup_fwdbwd", "{:.2f}x"),
                r["status"],
            ]
        )
    return tabulate(
        out,
        headers=[
            "encoder",
            "preset",
            "params",
            "T",
            "fwd/s",
            "fwd+bwd/s",
            "fwd/s explicit",
            "fwd+bwd/s explicit",
            "fused speed-up fwd",
            "fused speed-up fwd+bwd",
            "status",
        ],
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="ECG encoder throughput (samples/s) on CPU")
    ap.add_argument("--encoders", nargs="*", help="registered names (default: all)")
    ap.add_argument(
        "--presets",
        nargs="*",
        default=["tiny"],
        help="preset names; 'paper' expands to the module's PAPER_PRESETS (default: tiny; "
        "the paper presets take minutes on a 2-core CPU)",
    )
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--reps", type=int, default=3, help="timed repetitions (median reported)")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--attention", choices=["both", "fused", "explicit"], default="both")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    rows = run(args.encoders, args.presets, args.batch, args.reps, args.warmup, args.attention)
    print(
        f"batch {args.batch} x 12 x T, CPU, {torch.get_num_threads()} threads, torch {torch.__version__}, "
        f"median of {args.reps} (after {args.warmup} warm-up); {time.perf_counter() - t0:.0f}s total"
    )
    print(_table(rows))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
