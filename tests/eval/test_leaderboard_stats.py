"""Leaderboard statistics on written result + predictions files: intervals, paired bold, pairing check, flags."""

import numpy as np
import pytest

from ecg_data.paths import atomic_write_json
from ecg_eval.bootstrap import PairingError, paired_resampled_difference, verify_pairing
from ecg_eval.leaderboard import combined_interval, publish
from ecg_eval.results import predictions_path, result_path, write_predictions


def _write(root, method, seed, scores, y, ids, few=None):
    path = result_path(root, "real", method, "ptbxl_super", "zero_shot", None, seed)
    pred = predictions_path(path)
    write_predictions(pred, ids, ["A", "B"], y, scores)
    from ecg_eval.metrics import multilabel_auroc

    rep = multilabel_auroc(y, scores, ["A", "B"])
    atomic_write_json(
        path,
        {
            "schema_version": 1,
            "status": "ok",
            "method": method,
            "checkpoint_hash": "h",
            "task": "ptbxl_super",
            "suite": "real",
            "mode": "zero_shot",
            "fraction": None,
            "seed": seed,
            "fraction_percent": None,
            "scores": {"macro_auroc": rep.macro, "per_class_auroc": rep.per_class},
            "ci": {"macro_auroc": [rep.macro - 0.02, rep.macro + 0.02]},
            "predictions": pred.name,
            "few_positive_classes": few or {},
            "coverage": {"test": {"present": len(ids), "published": len(ids)}},  # the whole published test split
        },
    )


def _data(n=300, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, 2)) < 0.3).astype(np.int8)
    return y, [f"r{i}" for i in range(n)]


def test_combined_interval_covers_seed_spread():
    lo, hi = combined_interval([0.80], [(0.78, 0.82)])
    assert hi - lo == pytest.approx(0.04, rel=1e-6)  # one seed: the bootstrap interval
    lo2, hi2 = combined_interval([0.70, 0.80, 0.90], [(0.68, 0.72), (0.78, 0.82), (0.88, 0.92)])
    assert (hi2 - lo2) / 2 == pytest.approx(1.96 * np.sqrt((0.02 / 1.96) ** 2 + 0.01), rel=1e-6)


def test_pairing_is_verified_before_any_paired_statistic():
    verify_pairing(["a", "b"], ["a", "b"])
    with pytest.raises(PairingError, match=r"1 record\(s\) only in left .*'c'.*identical test record ids"):
        verify_pairing(["a", "b", "c"], ["a", "b"], what_a="left", what_b="right")
    with pytest.raises(PairingError, match="different order"):
        verify_pairing(["a", "b"], ["b", "a"])
    y, ids = _data()
    p = {"record_ids": np.asarray(ids), "classes": np.asarray(["A", "B"]), "y_true": y, "scores": y + 0.0}
    q = {**p, "record_ids": np.asarray(ids[::-1])}
    with pytest.raises(PairingError):
        paired_resampled_difference(p, q, task="t")


def test_bold_marks_best_and_not_significantly_worse(tmp_path):
    y, ids = _data()
    rng = np.random.default_rng(1)
    noise = rng.normal(size=y.shape)
    _write(tmp_path / "r", "best", 0, y + 0.8 * noise, y, ids)
    _write(tmp_path / "r", "close", 0, y + 0.8 * noise + 0.05 * rng.normal(size=y.shape), y, ids)  # same up to noise
    _write(tmp_path / "r", "poor", 0, y + 5.0 * noise, y, ids, few={"B": 3})
    text = publish(tmp_path / "r", tmp_path / "README.md", plot=False).read_text()
    rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| ")}
    assert "**" in rows["best"].split("|")[3] and "**" in rows["close"].split("|")[3]
    assert "**" not in rows["poor"].split("|")[3] and "‡" in rows["poor"]
    per_class = (tmp_path / "per_class" / "README.md").read_text()
    assert "## real / ptbxl_super / zero-shot" in per_class and "| B ‡" in per_class and "| best " in per_class
    # a predictions file on other records: the paired test refuses, naming both files, and the board still renders
    # (the cell is never bold by significance, marked §, the reason under its table)
    _write(tmp_path / "r", "other", 0, (y + 3.0 * noise)[:-1], y[:-1], ids[:-1])
    text = publish(tmp_path / "r", tmp_path / "README.md", plot=False).read_text()
    rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| ")}
    assert "§" in rows["other"].split("|")[3] and "**" not in rows["other"].split("|")[3]
    note = next(line for line in text.splitlines() if line.startswith("- § other"))
    assert "predictions.npz" in note and "identical test record ids" in note
    assert "§" not in rows["close"] and "**" in rows["close"].split("|")[3]


def test_mean_column_interval_is_a_bootstrap_of_the_mean_over_tasks(tmp_path):
    """Two tasks on shared resamples: the mean's interval is narrower than the tasks' average interval (the
    tasks' resampling errors partly cancel), contains the point estimate, and needs every predictions file."""
    from ecg_eval.bootstrap import resampled_macro
    from ecg_eval.leaderboard import Cell, _mean_cell
    from ecg_eval.results import read_predictions

    rng = np.random.default_rng(3)
    cells = {}
    for task in ("ptbxl_super", "ptbxl_rhythm"):
        y, ids = _data(n=250, seed=hash(task) % 100)
        scores = y + rng.normal(size=y.shape)
        path = result_path(tmp_path, "real", "m", task, "zero_shot", None, 0)
        pred = predictions_path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_predictions(pred, ids, ["A", "B"], y, scores)
        from ecg_eval.metrics import macro_auroc

        cells[task] = Cell(macro_auroc(y, scores), None, 1, predictions={0: pred}, task=task)
    mean = _mean_cell(cells, list(cells))
    assert mean is not None and mean.ci is not None
    lo, hi = mean.ci
    assert lo < mean.mean < hi
    per_task_sd = [
        np.std(resampled_macro(read_predictions(c.predictions[0]), task=c.task), ddof=1) for c in cells.values()
    ]
    assert (hi - lo) / 2 < 1.96 * float(np.mean(per_task_sd))  # independent tasks: sd of the mean < mean sd
    assert (hi - lo) / 2 == pytest.approx(1.96 * np.sqrt(np.sum(np.square(per_task_sd))) / 2, rel=0.1)
    cells["ptbxl_rhythm"] = Cell(cells["ptbxl_rhythm"].mean, None, 1, task="ptbxl_rhythm")  # no predictions file
    assert _mean_cell(cells, list(cells)).ci is None
