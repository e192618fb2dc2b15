"""Prompts are checked before pretraining, against the published class lists (readable without data)."""

import json
from pathlib import Path

import pytest

from ecg_data.tasks import PUBLISHED_TASKS, published_classes
from ecg_eval.prompts import PromptError, check_prompts, class_prompts


def test_default_prompts_resolve_every_published_task():
    check_prompts(list(PUBLISHED_TASKS))  # raises naming the classes otherwise
    p = class_prompts(published_classes("ptbxl_form"), dataset="ptbxl")
    assert "ST" in p["STD"][0] and "non-specific" in p["STD"][0]  # PTB-XL's STD_, not CPSC's ST depression entry
    assert "premature ventricular" in class_prompts(["VPC"], dataset="cpsc2018")["VPC"][0]


def test_merl_format_file_resolves_all_six_published_tasks(tmp_path: Path):
    """A MERL/MELP-format file (one comma-joined string per published class name) resolves as written."""
    names = sorted({c for t in PUBLISHED_TASKS for c in published_classes(t)})
    f = tmp_path / "merl_style.json"
    f.write_text(json.dumps({c: f"{c.lower()} finding, second phrase" for c in names}))
    check_prompts(list(PUBLISHED_TASKS), f)
    p = class_prompts(published_classes("csn"), dataset="csn", path=f, lowercase=True)
    assert p["AF"] == ["af finding, second phrase"]  # the file's own AF entry, no dataset override invented
    assert class_prompts(["1AVB"], dataset="cpsc2018", path=f, split_commas=True)["1AVB"] == [
        "1avb finding",
        "second phrase",
    ]


def test_check_prompts_names_every_missing_class_of_every_task(tmp_path: Path):
    f = tmp_path / "partial.json"
    f.write_text(json.dumps({"NORM": "normal ECG", "AFIB": "atrial fibrillation"}))
    with pytest.raises(PromptError) as err:
        check_prompts(["cpsc2018", "ptbxl_super"], f)
    msg = str(err.value)
    assert str(f) in msg and "before pretraining" in msg
    for c in ("VPC", "1AVB", "CRBBB", "STE", "PAC", "CLBBB", "STD"):
        assert f"'{c}'" in msg.split("ptbxl_super:")[0]
    for c in ("HYP", "MI", "CD", "STTC"):
        assert f"'{c}'" in msg.split("ptbxl_super:")[1]
    assert "'NORM'" not in msg and "'AFIB'" not in msg
    with pytest.raises(TypeError, match="pass the Task object"):
        check_prompts(["synth_ptbxl_super"], f)


def test_padded_and_bare_ptbxl_spellings_both_resolve(tmp_path: Path):
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"NST_": "non-specific ST change", "_AVB": "AV block"}))
    assert class_prompts(["NST", "AVB"], dataset="ptbxl", path=old) == {
        "NST": ["non-specific ST change"],
        "AVB": ["AV block"],
    }
    new = tmp_path / "new.json"
    new.write_text(json.dumps({"NST": "non-specific ST change"}))
    assert class_prompts(["NST_"], dataset="ptbxl", path=new) == {"NST_": ["non-specific ST change"]}


def test_paper_probe_stops_early_and_keeps_best_val_epoch():
    import numpy as np

    from ecg_eval.probe import PaperProbeConfig, fit_paper_probe

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(400, 16)).astype(np.float32), (rng.random((400, 3)) < 0.3).astype(np.float32)
    xv, yv = rng.normal(size=(200, 16)).astype(np.float32), (rng.random((200, 3)) < 0.3).astype(np.float32)
    fit = fit_paper_probe(x, y, xv, yv, config=PaperProbeConfig(max_epochs=100), seed=0)  # labels are noise
    epochs = [g["iterations"] for g in fit.grid]
    assert len(epochs) < 100 and len(epochs) - fit.iterations == 5  # patience 5 after the best epoch
    assert fit.val_macro_auroc == max(g["val_macro_auroc"] for g in fit.grid)
