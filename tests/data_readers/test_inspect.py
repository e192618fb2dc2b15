from pathlib import Path

import pytest

from ecg_data.inspect import main


def test_inspect_ptbxl_fixture(ptbxl_root: Path, capsys):
    assert main(["ptbxl", "--root", str(ptbxl_root), "--read", "3"]) == 0
    out = capsys.readouterr().out
    assert "records: 14" in out
    # published membership (not the fixture's folds): ids 1-14 of the shipped ptbxl_super split
    assert "== task ptbxl_super" in out and "split sizes: train=11, val=2, test=1" in out
    assert (
        "published split (https://github.com/cheliu-computation/MERL-ICML2024 @ 38799b7): absent here train=17073"
        in out
    )
    assert "== task ptbxl_all" in out and "dropped classes:" in out and "ABQRS: no positive" in out
    assert "read 3 records: 0 problem(s)" in out


def test_inspect_counts_read_problems(cpsc_root: Path, capsys):
    (cpsc_root / "Training_WFDB" / "A0001.mat").unlink()
    main(["cpsc2018", "--root", str(cpsc_root), "--read", "5"])
    out = capsys.readouterr().out
    assert "read 5 records: 1 problem(s)" in out and "signal file missing" in out


@pytest.mark.shared
def test_inspect_ptbxl500(ptbxl500: Path, capsys):
    main(["ptbxl", "--root", str(ptbxl500)])
    out = capsys.readouterr().out
    assert "records: 500" in out and "== task ptbxl_super (seed 0):" in out and "5 classes" in out
    assert "CD " in out and "STTC " in out
