"""Tasks and split files on written fixtures."""

import json
import shutil
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ecg_data.paths import cache_root
from ecg_data.record import DatasetNotFoundError
from ecg_data.tasks import TASKS, get_task, rule_task
from ecg_data.tasks.splits import stratified_split, subset_order


def test_task_names_follow_contract():
    want = {f"{p}_{k}" for p in ("ptbxl", "synth_ptbxl") for k in ("super", "sub", "form", "rhythm", "all")}
    want |= {
        "cpsc2018",
        "cpsc2018_full",
        "csn",
        "csn_exact",
        "mimic_iv_ecg",
        "synth_cpsc2018",
        "synth_mimic",
        "g12ec",
        "code15",
        "code_test",
    }
    assert set(TASKS.names()) == want


def test_ptbxl_fixture_tasks(ptbxl_root: Path):
    t = rule_task("ptbxl_super", root=ptbxl_root)
    # folds: 1-7 -> 1..7 train; 8 -> train; 9 -> val (9, 10, 14); 10 -> test (11, 12)
    assert t.splits == {
        "train": ["1", "2", "3", "4", "5", "6", "7", "8"],
        "val": ["9", "10", "14"],
        "test": ["11", "12"],
    }
    assert "13" in t.excluded  # rhythm only
    assert t.classes == ["CD", "HYP", "MI", "NORM", "STTC"] and t.suite == "real"
    np.testing.assert_array_equal(t.y(["10"]), [[1, 0, 1, 0, 1]])  # CLBBB->CD, IMI->MI, NDT->STTC
    assert t.y(["1", "2"]).dtype == np.float32
    with pytest.raises(KeyError, match="not in the task"):
        t.y(["13"])
    r = rule_task("ptbxl_rhythm", root=ptbxl_root)
    assert r.classes == ["AFIB", "SR"]  # likelihood 0.0 still counts (as in the benchmark code)
    assert "14" in r.excluded
    f = rule_task("ptbxl_form", root=ptbxl_root)
    # ABQRS has no positive in val/test -> dropped; NDT (form and diagnostic) kept
    assert f.classes == ["NDT"] and "ABQRS" in f.dropped and "no positive" in f.dropped["ABQRS"]
    a = rule_task("ptbxl_all", root=ptbxl_root)
    assert "SR" in a.classes and "ABQRS" in a.dropped


def test_class_dropping_removes_unlabelled_ptbxl_records(ptbxl_root: Path):
    t = rule_task("ptbxl_sub", root=ptbxl_root)
    # CLBBB: positives in train (5), val (10), test (12): kept; LVH: train 3, val 9, test 11: kept
    assert {"CLBBB", "IMI", "LVH", "NORM", "STTC"} == set(t.classes)
    f = rule_task("ptbxl_form", root=ptbxl_root)
    assert "2" not in f.labels.index and f.excluded["2"] == "no label left after dropping classes"


def test_split_files_written_and_reread(ptbxl_root: Path):
    t = rule_task("ptbxl_super", root=ptbxl_root, seed=3)
    path = cache_root() / "splits" / "ptbxl_super-rule" / t.reader().fingerprint() / "split-seed3.json"
    data = json.loads(path.read_text())
    assert data["splits"] == t.splits and data["classes"] == t.classes
    # re-read: change the file's candidate splits and see that they are used (not recomputed)
    data["candidate_splits"]["val"].remove("14")
    data["candidate_splits"]["train"].append("14")
    path.write_text(json.dumps(data))
    t2 = rule_task("ptbxl_super", root=ptbxl_root, seed=3)
    assert "14" in t2.splits["train"] and "14" not in t2.splits["val"]


def test_fresh_and_reread_agree(ptbxl_root: Path):
    for kind in ("super", "sub", "form", "rhythm", "all"):
        a = rule_task(f"ptbxl_{kind}", root=ptbxl_root)
        b = rule_task(f"ptbxl_{kind}", root=ptbxl_root)
        assert a.splits == b.splits and a.classes == b.classes and a.dropped == b.dropped and a.excluded == b.excluded
        pd.testing.assert_frame_equal(a.labels, b.labels)


def test_stratified_split_cpsc(cpsc_root: Path):
    t = rule_task("cpsc2018", root=cpsc_root, seed=0)
    sizes = {s: len(v) for s, v in t.splits.items()}
    # 72/8/20 of 50 = 36/4/10; iterative stratification trades exact sizes for label balance (+-1)
    for s, want in {"train": 36, "val": 4, "test": 10}.items():
        assert abs(sizes[s] - want) <= 1, sizes
    assert t.classes == ["AF", "I-AVB", "NORM", "PVC", "RBBB"]
    assert set(t.dropped) == {"LBBB", "PAC", "STD", "STE"}
    all_ids = [r for v in t.splits.values() for r in v]
    assert len(all_ids) == len(set(all_ids)) == 50
    shutil.rmtree(cache_root() / "splits")
    assert rule_task("cpsc2018", root=cpsc_root, seed=0).splits == t.splits  # deterministic from metadata
    assert rule_task("cpsc2018", root=cpsc_root, seed=1).splits != t.splits
    # stratified: each class's test share is close to 20 %
    for c in t.classes:
        n, k = t.labels[c].sum(), t.labels.loc[t.splits["test"], c].sum()
        assert abs(k - 0.2 * n) <= 1.5, (c, n, k)


def test_stratified_split_is_patient_disjoint():
    rng = np.random.default_rng(0)
    ids = [f"r{i}" for i in range(200)]
    labels = pd.DataFrame(rng.random((200, 4)) < 0.3, index=ids, columns=list("abcd")).astype(np.int8)
    groups = pd.Series([f"p{i // 3}" for i in range(200)], index=ids)
    sp = stratified_split(labels, seed=0, groups=groups)
    owner = {}
    for s, v in sp.items():
        for r in v:
            assert owner.setdefault(groups[r], s) == s
    assert sorted(sum(sp.values(), [])) == sorted(ids)
    assert stratified_split(labels, seed=0, groups=groups) == sp


def test_csn_task_min_positives(csn_root: Path, monkeypatch):
    import ecg_data.tasks.cinc as cinc

    monkeypatch.setattr(cinc, "CSN_MIN_POSITIVES", 5)
    monkeypatch.setattr(cinc.csn_labels, "__defaults__", (5,))
    t = rule_task("csn", root=csn_root)
    assert "RARE" in t.dropped and "< minimum 5" in t.dropped["RARE"]
    assert {"AFIB", "SB", "SR"} <= set(t.classes)
    assert len(t.labels) == 40  # records whose codes are all dropped stay as all-negative


def test_mimic_split_by_subject(mimic_root: Path):
    t = rule_task("mimic_iv_ecg", root=mimic_root)
    assert t.classes == [] and t.labels.shape == (4, 0)
    md = t.reader().metadata()
    subj = {s: set(md.loc[v, "patient_id"]) for s, v in t.splits.items()}
    assert not (subj["train"] & subj["val"]) and not (subj["train"] & subj["test"]) and not (subj["val"] & subj["test"])
    assert sum(map(len, t.splits.values())) == 4
    # both studies of subject 10000032 land in the same split
    assert any({"40689238", "44458630"} <= set(v) for v in t.splits.values())
    assert t.train_subset(1.0, 0) == t.splits["train"]


def test_train_subsets_nested_fixed_and_cover_classes(cpsc_root: Path):
    t = rule_task("cpsc2018", root=cpsc_root, seed=0)
    s1, s10 = t.train_subset(0.01, 0), t.train_subset(0.1, 0)
    assert set(s1) <= set(s10) <= set(t.splits["train"])
    assert len(s10) == max(round(0.1 * len(t.splits["train"])), len(s1))
    assert (t.labels.loc[s1, t.classes].sum() > 0).all()  # >= 1 positive per class even at 1 %
    files = sorted(p.name for p in t.split_dir.iterdir())
    assert "subset-0.01-seed0.json" in files and "subset-0.1-seed0.json" in files
    t2 = rule_task("cpsc2018", root=cpsc_root, seed=0)
    assert t2.train_subset(0.01, 0) == s1 and t2.train_subset(0.1, 0) == s10  # re-read
    order, n_cover = subset_order(t.splits["train"], t.labels[t.classes], 1, salt="cpsc2018")
    assert order != subset_order(t.splits["train"], t.labels[t.classes], 0, salt="cpsc2018")[0]
    assert n_cover <= len(t.classes)
    assert t.train_subset(0.1, 1) != s10  # another subset seed, its own file
    assert (t.split_dir / "subset-0.1-seed1-split0.json").is_file()


def test_root_from_env_or_clear_error(ptbxl_root: Path, monkeypatch, tmp_path: Path):
    monkeypatch.delenv("ECG_DATA_ROOT", raising=False)
    with pytest.raises(DatasetNotFoundError, match=r"ECG_DATA_ROOT.*ptbxl(.|\n)*physionet.org/content/ptb-xl"):
        get_task("ptbxl_super")
    shutil.move(str(ptbxl_root), tmp_path / "data" / "ptbxl") if (tmp_path / "data").mkdir() is None else None
    monkeypatch.setenv("ECG_DATA_ROOT", str(tmp_path / "data"))
    assert get_task("ptbxl_super").root == tmp_path / "data" / "ptbxl"
    with pytest.raises(DatasetNotFoundError, match="Expected layout"):
        get_task("csn")


def test_synthetic_tasks_use_ensure_preset(ptbxl_root: Path, cpsc_root: Path, mimic_root: Path, monkeypatch):
    asked = []
    roots = {"synth-ptbxl": ptbxl_root, "synth-cpsc2018": cpsc_root, "synth-mimic": mimic_root}

    def ensure_preset(name, *, n=None, seed=0):
        asked.append(name)
        return roots[name]

    monkeypatch.setitem(sys.modules, "ecg_data.synthetic", types.SimpleNamespace(ensure_preset=ensure_preset))
    t = get_task("synth_ptbxl_super")
    assert t.suite == "synthetic" and t.root == ptbxl_root and t.classes == ["CD", "HYP", "MI", "NORM", "STTC"]
    assert get_task("synth_cpsc2018").suite == "synthetic"
    assert get_task("synth_mimic").dataset == "mimic_iv_ecg"
    assert asked == ["synth-ptbxl", "synth-cpsc2018", "synth-mimic"]


def test_split_file_of_other_format_is_regenerated(ptbxl_root: Path):
    t = rule_task("ptbxl_super", root=ptbxl_root)
    path = t.split_dir / "split-seed0.json"
    data = json.loads(path.read_text())
    data["format"] = -1
    data["candidate_splits"]["train"] = ["1"]
    path.write_text(json.dumps(data))
    assert rule_task("ptbxl_super", root=ptbxl_root).splits == t.splits
    assert json.loads(path.read_text())["format"] != -1
