"""``python -m ecg_data verify``: release, checksums, missing files and the evaluation's published-split counts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd

from ecg_data.__main__ import main
from ecg_data.download import download
from ecg_data.tasks import get_task
from ecg_data.verify import PTBXL_REMOVED_IN_103, render, verify

from .conftest import write_sums

PTBXL_TASKS = ["ptbxl_form", "ptbxl_rhythm", "ptbxl_sub", "ptbxl_super"]


def _evaluation_counts(task: str, root: Path) -> dict[str, dict[str, int]]:
    t = get_task(task, root=root)
    return {s: {"present": len(t.splits[s]), "published": len(t.splits[s]) + len(t.absent[s])} for s in t.splits}


def test_ptbxl_sample_is_detected_as_before_103_with_its_coverage(ptbxl500, tmp_path, capsys):
    out = tmp_path / "report.json"
    assert main(["verify", "ptbxl", "--root", str(ptbxl500), "--json", str(out)]) == 1
    text = capsys.readouterr().out
    assert "release: before 1.0.3" in text and "ecg_id 137" in text
    rep = json.loads(out.read_text())
    assert rep["ok"] is False and rep["release"]["detected"] == "before 1.0.3"
    assert sorted(rep["tasks"]) == PTBXL_TASKS
    for t in PTBXL_TASKS:  # the same numbers evaluation reports
        assert rep["tasks"][t] == _evaluation_counts(t, ptbxl500)
    assert rep["tasks"]["ptbxl_super"]["test"]["published"] == 2158
    # the sample's SHA256SUMS.txt is 1.0.3's: the changed database and licence fail it, and the report says why
    assert sorted(rep["checksums"]["failed"]) == ["LICENSE.txt", "ptbxl_database.csv"]
    assert rep["checksums"]["missing"] == []
    assert any("before 1.0.3" in p and "checksums do not apply" in p for p in rep["problems"])
    assert rep["download_command"].startswith("python -m ecg_data download ptbxl --root ")


def test_partial_download_counts_and_says_how_to_complete(shared_server, tmp_path, capsys):
    root = tmp_path / "ptbxl"
    download("ptbxl", root, records="3", mirror=shared_server.url("ptbxl"), progress=False)
    rep = verify("ptbxl", root)
    for t in PTBXL_TASKS:
        assert rep.tasks[t] == _evaluation_counts(t, root)
    present = {t: sum(v["present"] for v in cov.values()) for t, cov in rep.tasks.items()}
    super_ids = get_task("ptbxl_super", root=root).splits
    assert {r for v in super_ids.values() for r in v} <= {"1", "2", "3"}  # the CSV's 500 rows do not count
    assert present["ptbxl_super"] == sum(len(v) for v in super_ids.values()) > 0
    missing = rep.checksums["missing"]
    assert "records500/00000/00004_hr.dat" in missing and len(missing) == 9 * 4
    assert any("required file(s) missing" in p for p in rep.problems) and not rep.ok
    assert f"python -m ecg_data download ptbxl --root {root.absolute()}" in render(rep)
    assert main(["verify", "ptbxl", "--root", str(root), "--json", "-"]) == 1
    as_json = json.loads(capsys.readouterr().out)
    assert as_json["ok"] is False and as_json["tasks"] == rep.tasks and as_json["checksums"]["missing"] == missing


def test_a_deleted_signal_file_is_absent_for_evaluation_too(shared_server, tmp_path):
    root = tmp_path / "ptbxl"
    download("ptbxl", root, records="all", mirror=shared_server.url("ptbxl"), progress=False)
    before = get_task("ptbxl_super", root=root)
    gone = before.splits["train"][0]
    (root / f"records500/00000/{int(gone):05d}_hr.dat").unlink()
    after = get_task("ptbxl_super", root=root)
    assert gone in after.absent["train"] and gone not in after.splits["train"]
    assert gone not in after.excluded
    rep = verify("ptbxl", root, tasks=["ptbxl_super"])
    assert rep.tasks["ptbxl_super"]["train"]["present"] == len(before.splits["train"]) - 1


def test_release_103_detected_when_its_checksums_match(shared_server, tmp_path):
    root = tmp_path / "ptbxl"
    download("ptbxl", root, records="all", mirror=shared_server.url("ptbxl"), progress=False)
    assert verify("ptbxl", root).release["detected"] == "before 1.0.3"  # the sample's database is the old one
    new = tmp_path / "ptbxl-103"
    shutil.copytree(root, new, ignore=shutil.ignore_patterns(".ecg_data"))
    db = pd.read_csv(new / "ptbxl_database.csv")
    db[~db["ecg_id"].astype(str).isin(PTBXL_REMOVED_IN_103)].to_csv(new / "ptbxl_database.csv", index=False)
    (new / "SHA256SUMS.txt").unlink()
    write_sums(new)
    rep = verify("ptbxl", new)
    assert rep.release["detected"] == "1.0.3" and "matches SHA256SUMS.txt" in rep.release["evidence"]
    assert rep.checksums["failed"] == []


def test_complete_trees_pass_and_a_corrupted_file_fails(server, tmp_path, capsys):
    mimic = tmp_path / "mimic-iv-ecg"
    download("mimic-iv-ecg", mimic, mirror=server.url("mimic-iv-ecg"), progress=False)
    assert main(["verify", "mimic-iv-ecg", "--root", str(mimic)]) == 0
    assert "complete" in capsys.readouterr().out
    rep = verify("mimic-iv-ecg", mimic)
    assert rep.ok and rep.release["detected"] == "1.0" and rep.records == {"on_disk": 6, "listed": 6, "skipped": 0}
    code = tmp_path / "code15"
    download("code15", code, mirror=server.url("code15"), progress=False, yes=True)
    rep = verify("code15", code)
    assert rep.ok, rep.problems
    assert rep.records["on_disk"] == 5
    # a file changed after download: its size/mtime no longer match what was verified, so it is hashed and fails
    dat = next(mimic.rglob("*.dat"))
    data = bytearray(dat.read_bytes())
    data[100] ^= 0xFF
    dat.write_bytes(bytes(data))
    rep = verify("mimic-iv-ecg", mimic)
    assert not rep.ok and rep.checksums["failed"] == [dat.relative_to(mimic).as_posix()]


def test_partial_tree_without_published_split(shared_server, tmp_path):
    root = tmp_path / "g12ec"
    download("g12ec", root, records="5", mirror=shared_server.url("g12ec"), progress=False)
    rep = verify("g12ec", root)
    assert rep.records["on_disk"] == 5 and rep.records["listed"] == 20 and not rep.ok
    assert any("15 of 20 listed records are not on disk" in p for p in rep.problems)
    download("g12ec", root, mirror=shared_server.url("g12ec"), progress=False)
    assert verify("g12ec", root).ok


def test_cpsc2018_and_csn_coverage_of_the_published_splits(server, shared_server, tmp_path):
    root = tmp_path / "cpsc2018"
    download("cpsc2018", root, mirror=server.url("cpsc2018"), progress=False)
    rep = verify("cpsc2018", root)
    assert list(rep.tasks) == ["cpsc2018"] and rep.tasks["cpsc2018"] == _evaluation_counts("cpsc2018", root)
    assert sum(v["published"] for v in rep.tasks["cpsc2018"].values()) == 6877
    assert sum(v["present"] for v in rep.tasks["cpsc2018"].values()) == 6
    csn = tmp_path / "csn"
    download("csn", csn, mirror=shared_server.url("csn"), progress=False)
    rep = verify("csn", csn)
    assert rep.tasks["csn"] == _evaluation_counts("csn", csn)
    assert sum(v["published"] for v in rep.tasks["csn"].values()) == 23026


def test_missing_root_and_wrong_task(tmp_path, capsys):
    assert main(["verify", "ptbxl", "--root", str(tmp_path / "nope")]) == 1
    assert "does not exist" in capsys.readouterr().out
    assert main(["verify", "ptbxl", "--root", str(tmp_path), "--tasks", "cpsc2018"]) == 2


def test_only_the_metadata_the_reader_needs_is_required(server, tmp_path):
    root = tmp_path / "mimic-iv-ecg"
    download("mimic-iv-ecg", root, mirror=server.url("mimic-iv-ecg"), progress=False)
    (root / "patients.csv").unlink()  # listed, optional (the demographics table)
    rep = verify("mimic-iv-ecg", root)
    assert rep.checksums["missing"] == ["patients.csv"] and rep.ok
    (root / "record_list.csv").unlink()
    rep = verify("mimic-iv-ecg", root)
    assert not rep.ok and any("record_list.csv" in p for p in rep.problems)


def test_a_symlinked_root_is_named_as_given(ptbxl500, tmp_path):
    link = tmp_path / "data" / "ptbxl"
    link.parent.mkdir()
    link.symlink_to(ptbxl500)
    rep = verify("ptbxl", link, tasks=["ptbxl_super"])
    assert rep.download_command == f"python -m ecg_data download ptbxl --root {link}"
