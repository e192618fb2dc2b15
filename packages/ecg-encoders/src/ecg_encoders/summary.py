"""``python -m ecg_encoders.summary``: parameter counts of every registered ECG encoder's presets.

Models are built on the ``meta`` device when possible (no memory, no init cost), so the paper-size
presets are counted in a second. An encoder whose module is not importable is reported as
``missing`` with the reason, never skipped.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import torch
from torch import nn

from ecg_encoders.registry import ECG_ENCODERS


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _build(factory: Any, preset: str) -> nn.Module:
    try:
        with torch.device("meta"):
            return factory(preset=preset)
    except Exception:  # some inits need real tensors (e.g. data-dependent); fall back to CPU
        return factory(preset=preset)


def encoder_rows(
    names: list[str] | None = None, include_tiny: bool = True, include_paper: bool = True
) -> list[dict[str, Any]]:
    """One row per (encoder, preset): name, preset, kind (paper/tiny), params, width, pooled_dim, status."""
    rows: list[dict[str, Any]] = []
    for name in names or ECG_ENCODERS.names():
        try:
            factory = ECG_ENCODERS.get(name)
            module = sys.modules[factory.__module__]
            presets: dict[str, dict] = module.PRESETS
            paper: list[str] = list(module.PAPER_PRESETS) if include_paper else []
        except (ImportError, AttributeError) as err:
            rows.append(
                dict(
                    encoder=name,
                    preset="-",
                    kind="-",
                    params=None,
                    width=None,
                    pooled_dim=None,
                    status=f"missing ({type(err).__name__}: {err})",
                )
            )
            continue
        chosen = paper + (["tiny"] if include_tiny and "tiny" in presets and "tiny" not in paper else [])
        for preset in chosen:
            try:
                model = _build(factory, preset)
                rows.append(
                    dict(
                        encoder=name,
                        preset=preset,
                        kind="tiny" if preset == "tiny" else "paper",
                        params=count_parameters(model),
                        width=getattr(model, "width", None),
                        pooled_dim=getattr(model, "pooled_dim", None),
                        status="ok",
                    )
                )
            except Exception as err:  # report, do not hide, a preset that fails to build
                rows.append(
                    dict(
                        encoder=name,
                        preset=preset,
                        kind="paper",
                        params=None,
                        width=None,
                        pooled_dim=None,
                        status=f"error ({type(err).__name__}: {err})",
                    )
                )
    return rows


def melp_tower_rows(preset: str = "melp") -> list[dict[str, Any]]:
    """MELP's ECG tower split into its parts; the total with the wav2vec2 pretraining head is what
    MELP's released ``ECGFMModel`` checkpoint holds (about 65.6M)."""
    from ecg_encoders.ecg.melp_tower import build_melp_tower
    from ecg_encoders.ecg.w2v_pretrain import Wav2Vec2Pretrainer

    with torch.device("meta"):
        tower = build_melp_tower(preset)
        head = Wav2Vec2Pretrainer(tower.encoder)
    backbone = count_parameters(tower.encoder)
    contrast = (
        sum(count_parameters(m) for m in (tower.attn_pool_contrast, tower.ln_contrast)) + tower.proj_contrast.numel()
    )
    caption = count_parameters(tower.attn_pool_caption) + count_parameters(tower.ln_caption)
    pretrain = count_parameters(head) - backbone
    return [
        dict(part="wav2vec2 backbone", params=backbone),
        dict(part="contrast pooler + LN + proj", params=contrast),
        dict(part="caption pooler + LN", params=caption),
        dict(part="tower (backbone + poolers)", params=backbone + contrast + caption),
        dict(part="w2v pretraining head (quantiser, project_q, final_proj)", params=pretrain),
        dict(part="tower + pretraining head (MELP ECGFMModel)", params=backbone + contrast + caption + pretrain),
    ]


def format_table(rows: list[list[Any]], headers: list[str]) -> str:
    """Plain-text table (no tabulate: ecg-encoders does not depend on it)."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(n: int | None) -> str:
    return "-" if n is None else f"{n:,} ({n / 1e6:.2f}M)"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ecg_encoders.summary", description=__doc__.splitlines()[0])
    ap.add_argument("--encoders", nargs="*", help="limit to these registered names")
    ap.add_argument("--no-tiny", action="store_true", help="paper presets only")
    ap.add_argument("--json", action="store_true", help="print JSON instead of tables")
    args = ap.parse_args(argv)
    rows = encoder_rows(args.encoders, include_tiny=not args.no_tiny)
    tower = melp_tower_rows()
    if args.json:
        print(json.dumps({"encoders": rows, "melp_tower": tower}, indent=2))
        return 0
    print(
        format_table(
            [
                [
                    r["encoder"],
                    r["preset"],
                    r["kind"],
                    _fmt(r["params"]),
                    r["width"] or "-",
                    r["pooled_dim"] or "-",
                    r["status"],
                ]
                for r in rows
            ],
            headers=["encoder", "preset", "kind", "parameters", "width", "pooled", "status"],
        )
    )
    print("\nMELP ECG tower (wav2vec2 'melp' preset + attentional poolers)")
    print(format_table([[r["part"], _fmt(r["params"])] for r in tower], headers=["part", "parameters"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
