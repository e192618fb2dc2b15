"""Draw one synthetic record per condition in the standard 12-lead layout -> docs/figures/synthetic_conditions.png.

Layout per panel: four 2.5 s columns (I/II/III, aVR/aVL/aVF, V1-V3, V4-V6) and a 10 s lead II rhythm
strip, 10 mm/mV and 25 mm/s proportions, on ECG paper grid.

    python -m benchmarks.experiments.plot_synthetic [--out docs/figures/synthetic_conditions.png] [--difficulty easy]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ecg_data.record import LEADS  # noqa: E402
from ecg_data.synthetic import forced, generate_records  # noqa: E402

#: (title, rhythm, extras, acute)
PANELS: list[tuple[str, str, tuple[str, ...], bool]] = [
    ("Normal sinus rhythm", "SR", (), False),
    ("Sinus bradycardia", "SB", (), False),
    ("Sinus tachycardia", "STACH", (), False),
    ("Atrial fibrillation", "AF", (), False),
    ("Atrial flutter", "AFL", (), False),
    ("1st-degree AV block", "SR", ("1AVB",), False),
    ("Left bundle branch block", "SR", ("LBBB",), False),
    ("Right bundle branch block", "SR", ("RBBB",), False),
    ("Left anterior fascicular block", "SR", ("LAFB",), False),
    ("Left ventricular hypertrophy", "SR", ("LVH",), False),
    ("Acute anterior MI (STEMI)", "SR", ("AMI",), True),
    ("Acute inferior MI (STEMI)", "SR", ("IMI",), True),
    ("Old lateral MI", "SR", ("LMI",), False),
    ("Ischaemic ST depression", "SR", ("ISC",), False),
    ("T-wave inversion", "SR", ("TINV",), False),
    ("Premature ventricular complexes", "SR", ("PVC",), False),
    ("Premature atrial complexes", "SR", ("PAC",), False),
    ("Low QRS voltage", "SR", ("LVOLT",), False),
    ("Long QT", "SR", ("LQT",), False),
    ("Ventricular pacing", "PACE", (), False),
    ("AF + LBBB", "AF", ("LBBB",), False),
    ("RBBB + LAFB (bifascicular)", "SR", ("RBBB", "LAFB"), False),
]


def draw(ax: plt.Axes, sig: np.ndarray, fs: float, title: str) -> None:
    """Standard layout: rows 3 x columns 4 of 2.5 s segments plus a rhythm strip, offsets 3 mV apart."""
    seg = int(2.5 * fs)
    cols = [("I", "II", "III"), ("aVR", "aVL", "aVF"), ("V1", "V2", "V3"), ("V4", "V5", "V6")]
    row_gap = 3.0
    for c, names in enumerate(cols):
        for r, name in enumerate(names):
            k = LEADS.index(name)
            x = c * 2.5 + np.arange(seg) / fs
            y = sig[k, c * seg : (c + 1) * seg] - row_gap * r
            ax.plot(x, y, color="k", lw=0.6)
            ax.text(c * 2.5 + 0.05, -row_gap * r + 0.9, name, fontsize=7)
    ax.plot(np.arange(sig.shape[1]) / fs, sig[1] - row_gap * 3, color="k", lw=0.6)
    ax.text(0.05, -row_gap * 3 + 0.9, "II", fontsize=7)
    for v in np.arange(0, 10.01, 0.2):
        ax.axvline(v, color="#f4b6b6", lw=0.4, zorder=0)
    for h in np.arange(-11.0, 2.01, 0.5):
        ax.axhline(h, color="#f4b6b6", lw=0.4, zorder=0)
    ax.set_xlim(0, 10)
    ax.set_ylim(-11, 2)
    ax.set_aspect(0.4)  # 25 mm/s and 10 mm/mV: 1 s = 2.5 x 1 mV
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=10, loc="left")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="docs/figures/synthetic_conditions.png")
    ap.add_argument("--difficulty", default="easy")
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args()
    ncol = 2
    nrow = (len(PANELS) + ncol - 1) // ncol
    fig, axes = plt.subplots(nrow, ncol, figsize=(11 * ncol, 5.0 * nrow))
    for ax, (title, rhythm, extras, acute) in zip(axes.ravel(), PANELS):
        cs = forced(rhythm, list(extras), acute)
        rec = next(
            generate_records(
                1, args.seed, args.difficulty, conditions=cs, start=PANELS.index((title, rhythm, extras, acute))
            )
        )
        codes = ", ".join(rec.scp_codes)
        draw(ax, rec.signal, rec.fs, f"{title}  [SCP: {codes}]  HR {rec.meta['hr']:.0f}/min")
    for ax in axes.ravel()[len(PANELS) :]:
        ax.axis("off")
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=70)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
