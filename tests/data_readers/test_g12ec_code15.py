"""G12EC on the real CinC 2021 sample; CODE-15% and the CODE test set on HDF5 files written in their exact layout."""

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ecg_data.readers import get_reader
from ecg_data.readers.code15 import CODE_CLASSES
from ecg_data.record import DatasetNotFoundError, RecordError
from ecg_data.tasks import get_task
from ecg_data.tasks.g12ec import g12ec_labels

h5py = pytest.importorskip("h5py")


# -- G12EC -------------------------------------------------------------------------------------------------------


@pytest.mark.shared
def test_g12ec_reads_the_real_georgia_records(cinc_sample: Path) -> None:
    r = get_reader("g12ec", cinc_sample)
    md = r.metadata()
    assert len(md) == 20 and all(i.startswith("E") for i in md.index)  # HR*/JS* records of the folder are not Georgia
    assert md.loc["E07503", "codes"] == ["253352002", "427084000"]
    assert md.loc["E07503", "scored_classes"] == ["STach"]  # 253352002 (left atrial abnormality) is unscored
    rec = r.read("E07503")
    assert rec.signal.shape == (12, 5000) and rec.fs == 500 and rec.signal.dtype == np.float32
    assert np.all(np.isfinite(rec.signal)) and 0.05 < np.abs(rec.signal).max() < 20  # millivolts
    lab = g12ec_labels(r, min_positives=2)
    # sample counts: NSR 5, STach 6, SB 4, RBBB 2, LQT 2, TAb 1, TInv 1 (LVH 164873001 is not a scored class)
    assert list(lab.labels.columns) == ["LQT", "NSR", "RBBB", "SB", "STach"]
    assert lab.labels.loc["E07503"].to_dict()["STach"] == 1
    assert set(lab.dropped) == {"TAb", "TInv"}  # one positive < 2


@pytest.mark.shared
def test_g12ec_task_on_the_sample(cinc_sample: Path) -> None:
    task = get_task("g12ec", root=cinc_sample)
    assert sum(len(v) for v in task.splits.values()) == 20
    assert task.classes == [] and all("minimum 50" in why for why in task.dropped.values())  # 20 records: too few


@pytest.mark.shared
def test_g12ec_bad_input(cinc_sample: Path, tmp_path: Path) -> None:
    for stem in ("E07503", "E07504", "E07506"):
        for ext in (".hea", ".mat"):
            shutil.copy(cinc_sample / f"{stem}{ext}", tmp_path / f"{stem}{ext}")
    hea = tmp_path / "E07504.hea"
    hea.write_text("\n".join(ln for ln in hea.read_text().splitlines() if not ln.startswith("# Dx")) + "\n")
    (tmp_path / "E07506.mat").write_bytes((tmp_path / "E07506.mat").read_bytes()[:200])
    r = get_reader("g12ec", tmp_path)
    assert list(r.metadata().index) == ["E07503", "E07506"]
    assert "no '# Dx:' line" in r.skipped["E07504"]
    with pytest.raises(RecordError, match="E07506"):
        r.read("E07506")
    empty = tmp_path / "none"
    empty.mkdir()
    (empty / "JS00001.hea").write_text("x")
    with pytest.raises(DatasetNotFoundError, match="no Georgia records"):
        get_reader("g12ec", empty)


# -- CODE-15% ----------------------------------------------------------------------------------------------------


def _tracing(n_samples: int, seed: int) -> np.ndarray:
    """(4096, 12): a 400 Hz sine-and-noise ECG stand-in of ``n_samples``, zero-padded at both ends like CODE."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_samples) / 400
    sig = np.sin(2 * np.pi * 1.2 * t)[:, None] * np.linspace(0.5, 1.5, 12)[None] + 0.01 * rng.normal(
        size=(n_samples, 12)
    )
    out = np.zeros((4096, 12), np.float32)
    start = (4096 - n_samples) // 2
    out[start : start + n_samples] = sig
    return out


def write_code15(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    parts = {"exams_part0.hdf5": [101, 102, 103], "exams_part1.hdf5": [201, 202]}
    for name, ids in parts.items():
        with h5py.File(root / name, "w") as f:
            tr = np.stack([_tracing(4000 if e % 2 else 2800, e) for e in ids] + [np.zeros((4096, 12), np.float32)])
            f.create_dataset("tracings", data=tr)
            f.create_dataset("exam_id", data=np.array(ids + [0], dtype=np.int64))  # last row: padding, id 0
    rows = []
    for e, pid, labs in [
        (101, 1, {"AF"}),
        (102, 1, set()),
        (103, 2, {"RBBB", "1dAVb"}),
        (201, 3, {"SB"}),
        (202, 4, {"ST"}),
        (301, 5, {"LBBB"}),
    ]:
        row = {
            "exam_id": e,
            "age": 60,
            "is_male": True,
            "nn_predicted_age": 61.0,
            **{c: c in labs for c in CODE_CLASSES},
            "patient_id": pid,
            "death": "",
            "timey": "",
            "normal_ecg": not labs,
            "trace_file": {"1": "exams_part0.hdf5", "2": "exams_part1.hdf5"}.get(str(e)[0], "exams_part2.hdf5"),
        }
        rows.append(row)
    cols = [
        "exam_id",
        "age",
        "is_male",
        "nn_predicted_age",
        "1dAVb",
        "RBBB",
        "LBBB",
        "SB",
        "ST",
        "AF",
        "patient_id",
        "death",
        "timey",
        "normal_ecg",
        "trace_file",
    ]
    pd.DataFrame(rows)[cols].to_csv(root / "exams.csv", index=False)
    return root


def test_code15_reader(tmp_path: Path) -> None:
    r = get_reader("code15", write_code15(tmp_path / "code15"))
    md = r.metadata()
    assert list(md.index) == ["101", "102", "103", "201", "202"]
    assert r.skipped == {"301": "exams_part2.hdf5 absent"}  # a part that was not downloaded: counted, not silent
    assert md.loc["103", "codes"] == ["1dAVb", "RBBB"] and md.loc["102", "codes"] == []
    assert md.loc["101", "patient_id"] == "1" and md.loc["201", "row"] == 0
    rec = r.read("102")
    assert rec.fs == 400 and rec.signal.shape == (12, 2800)  # zero padding trimmed
    np.testing.assert_allclose(rec.signal, _tracing(2800, 102)[648 : 648 + 2800].T, atol=1e-6)
    full = get_reader("code15", tmp_path / "code15", trim_padding=False).read("101")
    assert full.signal.shape == (12, 4096)
    assert r.fingerprint() != get_reader("code15", tmp_path / "code15", scale_to_mv=0.1).fingerprint()


def test_code15_task_is_patient_disjoint(tmp_path: Path) -> None:
    task = get_task("code15", root=write_code15(tmp_path / "code15"))
    md = task.reader().metadata()
    where = {md.loc[r, "patient_id"]: s for s, ids in task.splits.items() for r in ids}
    assert all(where[md.loc[r, "patient_id"]] == s for s, ids in task.splits.items() for r in ids)
    assert set(task.labels.columns) <= set(CODE_CLASSES)


def test_code15_bad_input(tmp_path: Path) -> None:
    root = write_code15(tmp_path / "c")
    with h5py.File(root / "exams_part1.hdf5", "r+") as f:
        tr = f["tracings"][()]
        tr[1, 100, 3] = np.nan
        del f["tracings"]
        f.create_dataset("tracings", data=tr)
    r = get_reader("code15", root)
    with pytest.raises(RecordError, match=r"exams_part1.hdf5\[1\].*NaN"):
        r.read("202")
    r.close()
    with h5py.File(root / "exams_part0.hdf5", "r+") as f:
        del f["exam_id"]
    with pytest.raises(RecordError, match="exams_part0.hdf5: HDF5 file has no dataset 'exam_id'"):
        get_reader("code15", root).metadata()
    fresh = write_code15(tmp_path / "c2")
    (fresh / "exams_part1.hdf5").write_bytes(b"not hdf5")
    with pytest.raises(RecordError, match="exams_part1.hdf5: unreadable HDF5 file"):
        get_reader("code15", fresh).metadata()
    pd.read_csv(root / "exams.csv").drop(columns=["trace_file"]).to_csv(root / "exams.csv", index=False)
    with pytest.raises(RecordError, match="trace_file"):
        get_reader("code15", root)
    for p in root.glob("*.hdf5"):
        p.unlink()
    with pytest.raises(DatasetNotFoundError, match="exams_part"):
        get_reader("code15", root)


def write_code_test(root: Path, n: int = 30) -> Path:
    (root / "annotations").mkdir(parents=True)
    with h5py.File(root / "ecg_tracings.hdf5", "w") as f:
        f.create_dataset("tracings", data=np.stack([_tracing(4000, i) for i in range(n)]))
    rng = np.random.default_rng(0)
    gold = pd.DataFrame(rng.integers(0, 2, size=(n, 6)), columns=["1dAVb", "RBBB", "LBBB", "SB", "AF", "ST"])
    gold.to_csv(root / "annotations" / "gold_standard.csv", index=False)
    noisy = gold.copy()
    noisy.iloc[0] = 1 - noisy.iloc[0]
    noisy.to_csv(root / "annotations" / "cardiologist1.csv", index=False)
    pd.DataFrame({"age": rng.integers(20, 90, n), "is_male": rng.integers(0, 2, n)}).to_csv(
        root / "attributes.csv", index=False
    )
    return root


def test_code_test_reader_and_task(tmp_path: Path) -> None:
    root = write_code_test(tmp_path / "code-test")
    r = get_reader("code_test", root)
    md = r.metadata()
    gold = pd.read_csv(root / "annotations" / "gold_standard.csv")
    assert list(md.index[:3]) == ["0", "1", "2"] and len(md) == 30
    assert md.loc["5", "codes"] == [c for c in CODE_CLASSES if gold.loc[5, c] == 1]
    assert md.loc["0", "rater_cardiologist1"] == [c for c in CODE_CLASSES if gold.loc[0, c] == 0]
    assert r.read("7").signal.shape == (12, 4000)
    task = get_task("code_test", root=root)
    assert sum(len(v) for v in task.splits.values()) == 30
    pd.read_csv(root / "annotations" / "gold_standard.csv").iloc[:10].to_csv(
        root / "annotations" / "gold_standard.csv", index=False
    )
    with pytest.raises(RecordError, match="10 rows but ecg_tracings.hdf5 holds 30"):
        get_reader("code_test", root).metadata()
