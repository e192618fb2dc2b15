"""List torch.compile graph breaks of each compiled sub-module (``ecg_text_align.perf.compile_targets``) of a method.

    python -m benchmarks.perf.graph_breaks                 # MELP tiny
    python -m benchmarks.perf.graph_breaks --methods melp esi --paper

Runs ``torch._dynamo.explain`` on each sub-module's forward with the inputs it gets in one training step (captured
by a forward hook); capture only, no code generation, so it is fast and needs no C++ compiler.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import torch

import benchmarks.perf.step_models as sm
from ecg_text_align.perf import compile_targets


def captured_inputs(model: Any, batch: dict, names: list[str]) -> dict[str, tuple[tuple, dict]]:
    """The (args, kwargs) each named sub-module is called with in one ``compute_losses``."""
    seen: dict[str, tuple[tuple, dict]] = {}
    hooks = [
        getattr(model, n).register_forward_pre_hook(
            lambda m, a, k, n=n: seen.setdefault(n, (a, k)) and None, with_kwargs=True
        )
        for n in names
    ]
    try:
        model.compute_losses(batch)
    finally:
        for h in hooks:
            h.remove()
    return seen


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--methods", nargs="+", default=["melp"], choices=sm.METHODS)
    ap.add_argument("--paper", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        text_dirs = sm.offline_text_dirs(Path(tmp))
        for method in args.methods:
            model, _ = sm.build(method, args.paper, text_dirs)
            model.train()
            names = compile_targets(model)
            inputs = captured_inputs(model, sm.make_batch(model, 2), names)
            for n in names:
                if n not in inputs:
                    print(f"{method}.{n}: not called in compute_losses")
                    continue
                a, k = inputs[n]
                ex = torch._dynamo.explain(getattr(model, n))(*a, **k)
                print(f"{method}.{n}: {ex.graph_count} graph(s), {ex.graph_break_count} break(s)")
                for b in ex.break_reasons:
                    frame = b.user_stack[-1] if b.user_stack else None
                    where = f"{Path(frame.filename).name}:{frame.lineno}" if frame else "?"
                    print(f"    {where}: {str(b.reason).splitlines()[0][:160]}")
                torch._dynamo.reset()


if __name__ == "__main__":
    main()
