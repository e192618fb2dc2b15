"""The published benchmark tasks: shipped membership and labels, on the real samples and on written files."""

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dr_fixtures import CONDITIONS, lead_signal, write_challenge

import ecg_data.tasks.published as pubmod
from ecg_data.readers import get_reader
from ecg_data.readers.csn import CONDITIONS_FILE
from ecg_data.readers.snomed import CPSC_SNOMED
from ecg_data.tasks import get_task, published_classes, published_labels, published_split, rule_task
from ecg_data.tasks.cinc import CPSC_PUBLISHED_NAMES
from ecg_data.tasks.names import PTBXL_PADDED, canonical_class

#: Published sizes (MERL finetune/data_split, rows per file) and class lists (column headers).
SIZES = {
    "ptbxl_super": (17084, 2146, 2158),
    "ptbxl_sub": (17084, 2146, 2158),
    "ptbxl_form": (7197, 901, 880),
    "ptbxl_rhythm": (16832, 2100, 2098),
    "cpsc2018": (4950, 551, 1376),
    "csn": (16546, 1860, 4620),
}


def test_published_split_readable_without_data():
    for name, sizes in SIZES.items():
        sp = published_split(name)
        assert tuple(len(sp[s]) for s in ("train", "val", "test")) == sizes
        ids = [r for v in sp.values() for r in v]
        assert len(ids) == len(set(ids)), name  # no record in two splits
    assert published_split("cpsc2018")["test"][:2] == ["A6729", "A0493"]
    assert all(r[0] == "A" and len(r) == 5 for v in published_split("cpsc2018").values() for r in v)
    assert all(r.startswith("JS") for v in published_split("csn").values() for r in v)
    assert published_split("ptbxl_super")["test"][:2] == ["9", "38"]  # ecg_id as a plain decimal string
    assert published_classes("cpsc2018") == ["AFIB", "VPC", "NORM", "1AVB", "CRBBB", "STE", "PAC", "CLBBB", "STD"]
    csn = published_classes("csn")
    assert len(csn) == 38 and {"AF", "AFIB", "ST", "AVB", "VB"} <= set(csn) and not {"SB", "LVQRSAL", "IDC"} & set(csn)
    sub = published_classes("ptbxl_sub")
    assert len(sub) == 23 and {"AVB", "ISC", "NST"} <= set(sub) and not any(c.strip("_") != c for c in sub)
    assert {"STD", "NT", "STE", "TAB", "NST"} <= set(published_classes("ptbxl_form"))
    lab = published_labels("cpsc2018")
    assert lab.shape == (6877, 9) and int(lab["CRBBB"].sum()) == 1857
    prov = pubmod.load_published("csn").provenance
    assert prov["repository"].endswith("cheliu-computation/MERL-ICML2024") and prov["license"].startswith("MIT")
    assert prov["commit"] == "38799b7deb1c9958f41badcfacc6a95192787cc4"
    assert set(prov["files"]) == {f"finetune/data_split/chapman/chapman_{s}.csv" for s in ("train", "val", "test")}


def test_tampered_published_file_is_refused(tmp_path: Path, monkeypatch):
    work = tmp_path / "published_splits"
    shutil.copytree(pubmod.data_dir(), work)
    monkeypatch.setattr(pubmod, "data_dir", lambda: work)
    pubmod.load_published.cache_clear()
    try:
        doc = json.loads(gzip.decompress((work / "cpsc2018.json.gz").read_bytes()))
        doc["splits"]["test"].append("A9999")
        (work / "cpsc2018.json.gz").write_bytes(gzip.compress(json.dumps(doc).encode()))
        with pytest.raises(pubmod.PublishedSplitError, match=r"cpsc2018\.json\.gz: sha256 differs"):
            pubmod.load_published("cpsc2018")
        manifest = json.loads((work / "MANIFEST.json").read_text())
        import hashlib

        manifest["files"]["cpsc2018.json.gz"]["sha256"] = hashlib.sha256(
            (work / "cpsc2018.json.gz").read_bytes()
        ).hexdigest()
        (work / "MANIFEST.json").write_text(json.dumps(manifest))
        with pytest.raises(pubmod.PublishedSplitError, match="content checksum mismatch"):
            pubmod.load_published("cpsc2018")
    finally:
        pubmod.load_published.cache_clear()


def test_ptbxl_names_without_padding():
    assert canonical_class("NST_") == "NST" and canonical_class("_AVB") == "AVB" and canonical_class("NORM") == "NORM"
    with pytest.raises(KeyError, match="unknown class 'XYZ'"):
        canonical_class("XYZ", ["NORM"])
    assert set(PTBXL_PADDED.values()) <= set(published_classes("ptbxl_sub")) | set(published_classes("ptbxl_form"))


@pytest.mark.shared
def test_ptbxl500_published_tasks_agree_with_rules(ptbxl500: Path):
    """On the real sample: shipped labels == our PTB-XL rules record for record; absent records counted."""
    for kind in ("super", "sub", "form", "rhythm"):
        t = get_task(f"ptbxl_{kind}", root=ptbxl500)
        assert t.classes == published_classes(f"ptbxl_{kind}")  # fixed, published order
        rule = rule_task(f"ptbxl_{kind}", root=ptbxl500)
        assert not any(c != c.strip("_") for c in t.classes + rule.classes)
        sp = published_split(f"ptbxl_{kind}")
        md = get_reader("ptbxl", ptbxl500).metadata()
        folds = {"train": set(range(1, 9)), "val": {9}, "test": {10}}
        for s in ("train", "val", "test"):
            assert t.splits[s] == [r for r in sp[s] if r in md.index]
            assert len(t.absent[s]) == len(sp[s]) - len(t.splits[s]) > 0
            assert set(md.loc[t.splits[s], "strat_fold"]) <= folds[s]  # the published split = strat_fold 1-8/9/10
            assert set(rule.splits[s]) & set(sp[s]) <= set(t.splits[s])
        common = [c for c in t.classes if c in rule.classes]
        ids = [r for r in t.labels.index if r in rule.labels.index]
        np.testing.assert_array_equal(t.labels.loc[ids, common].to_numpy(), rule.labels.loc[ids, common].to_numpy())
        for r in set(t.labels.index) - set(
            ids
        ):  # the rule removed it: its classes were dropped there (sample too small)
            assert {c for c in t.classes if t.labels.loc[r, c]} <= set(rule.dropped), r
        for c in set(t.classes) - set(common):  # a rule class is missing only when the sample has no positive
            assert t.labels[c].sum() == 0 or c in rule.dropped
        assert t.published["n_absent"]["test"] == len(t.absent["test"]) and not t.dropped
    sub = get_task("ptbxl_sub", root=ptbxl500)
    assert sub.y(["39"])[0][sub.classes.index("NST")] == 1  # NST_ in scp_codes -> published NST


@pytest.mark.shared
def test_csn_published_on_real_js_records(cinc_sample: Path, tmp_path: Path, monkeypatch):
    """The CinC sample's Chapman-Shaoxing records in the ecg-arrhythmia layout (symlinks, nothing copied)."""
    root = tmp_path / "csn"
    d = root / "WFDBRecords" / "20" / "200"
    d.mkdir(parents=True)
    for f in sorted(cinc_sample.glob("JS*")):
        (d / f.name).symlink_to(f)
    pd.DataFrame(CONDITIONS, columns=["Acronym Name", "Full Name", "Snomed_CT"]).to_csv(
        root / CONDITIONS_FILE, index=False
    )
    t = get_task("csn", root=root)
    members = [r for s in ("train", "val", "test") for r in t.splits[s]]
    assert sorted(members) == ["JS20001", "JS20007", "JS20008", "JS20010", "JS20011", "JS20016", "JS20018", "JS20019"]
    assert sum(len(v) for v in t.absent.values()) == 23026 - 8
    assert len(t.excluded) == 12 and set(t.excluded.values()) == {"not in the published split"}
    assert t.classes == published_classes("csn") and not t.dropped  # fixed even with no positive here
    pos = lambda task, r: {c for c, v in zip(task.classes, task.y([r])[0]) if v}  # noqa: E731
    # JS20007 has 426177001 (sinus bradycardia) in its header; the published columns have no SB at all
    assert pos(t, "JS20007") == {"TWO", "APB", "TWC"}
    import ecg_data.tasks.cinc as cinc

    monkeypatch.setattr(cinc, "CSN_MIN_POSITIVES", 1)
    e = get_task("csn_exact", root=root)
    assert e.splits == t.splits  # same membership: only the label definition differs
    assert "SB" in pos(e, "JS20007") and "SR" not in e.classes


def _write_cpsc(root: Path, ids: list[str], t_seconds: float = 12.0) -> None:
    """CPSC2018 in the Challenge 2020 layout; each record coded from its published labels (our SNOMED table)."""
    lab = published_labels("cpsc2018")
    back = {v: k for k, v in CPSC_PUBLISHED_NAMES.items()}
    for i, rid in enumerate(ids):
        classes = [back[c] for c in lab.columns if lab.loc[rid, c]]
        sig = lead_signal(int(t_seconds * 500), seed=i)
        write_challenge(root / "Training_WFDB", rid, sig, dx=",".join(CPSC_SNOMED[c][0] for c in classes))


def test_cpsc2018_published_window_and_labels(tmp_path: Path):
    sp = published_split("cpsc2018")
    ids = sp["train"][:6] + sp["val"][:2] + sp["test"][:3]
    _write_cpsc(tmp_path / "cpsc", ids)
    (tmp_path / "cpsc" / "Training_WFDB" / "A9990.hea").write_text(
        (tmp_path / "cpsc" / "Training_WFDB" / f"{ids[0]}.hea").read_text().replace(ids[0], "A9990")
    )
    shutil.copy(
        tmp_path / "cpsc" / "Training_WFDB" / f"{ids[0]}.mat", tmp_path / "cpsc" / "Training_WFDB" / "A9990.mat"
    )
    t = get_task("cpsc2018", root=tmp_path / "cpsc")
    full = get_task("cpsc2018_full", root=tmp_path / "cpsc")
    assert t.splits == full.splits and t.splits["test"] == sp["test"][:3]
    assert t.excluded == {"A9990": "not in the published split"}
    assert sum(len(v) for v in t.absent.values()) == 6877 - len(ids)
    assert t.classes == full.classes == published_classes("cpsc2018")
    raw = full.reader().read(ids[0]).signal
    win = t.reader().read(ids[0]).signal
    assert raw.shape == (12, 6000) and win.shape == (12, 5000)
    np.testing.assert_array_equal(win[:, :2500], raw[:, :2500])
    assert not win[:, 2500:].any()  # zero-padded after the first 5 s
    assert t.reader().fingerprint() != full.reader().fingerprint()  # own cache key
    # our exact-code labels (renamed to the published names) agree with the shipped matrix on these records
    from ecg_data.tasks.cinc import cpsc_labels

    renamed = cpsc_labels(full.reader()).labels.rename(columns=CPSC_PUBLISHED_NAMES)
    for rid in ids:
        want = {c for c in t.classes if t.labels.loc[rid, c]}
        assert want == {c for c in renamed.columns if renamed.loc[rid, c]}, rid


def test_published_task_subsets_are_fixed_and_keep_all_classes(tmp_path: Path):
    sp = published_split("cpsc2018")
    ids = sp["train"][:40] + sp["val"][:5] + sp["test"][:5]
    _write_cpsc(tmp_path / "cpsc", ids, t_seconds=6.0)
    t = get_task("cpsc2018", root=tmp_path / "cpsc")
    sub = t.train_subset(0.1, 0)
    assert sub == get_task("cpsc2018", root=tmp_path / "cpsc").train_subset(0.1, 0)
    assert set(sub) <= set(t.splits["train"])
    for c in t.classes:
        if t.labels.loc[t.splits["train"], c].sum():
            assert t.labels.loc[sub, c].sum() >= 1
    assert "-pub" in t.split_dir.name  # subsets keyed by the shipped content's checksum


def test_windowed_reader_pickles_for_cache_workers(tmp_path: Path):
    """The cache reads records in worker processes: the windowed reader must survive pickling unchanged."""
    import pickle

    sp = published_split("cpsc2018")
    _write_cpsc(tmp_path / "cpsc", sp["test"][:2])
    r = get_task("cpsc2018", root=tmp_path / "cpsc").reader()
    r2 = pickle.loads(pickle.dumps(r))
    np.testing.assert_array_equal(r2.read(sp["test"][0]).signal, r.read(sp["test"][0]).signal)
    assert r2.fingerprint() == r.fingerprint() and r2.name == "cpsc2018"
