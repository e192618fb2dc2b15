"""``python -m ecg_data download`` against a real HTTP server on 127.0.0.1 (tests/data_download/conftest.py)."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ecg_data import download as dl
from ecg_data import sources
from ecg_data.__main__ import main
from ecg_data.download import AccessDeniedError, ChecksumError, DownloadError, download
from ecg_data.readers import get_reader

REPO = Path(__file__).resolve().parents[2]


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and ".ecg_data" not in p.parts}


def _listed(tree: Path, sums: str = "SHA256SUMS.txt") -> set[str]:
    return {line.split(maxsplit=1)[1] for line in (tree / sums).read_text().splitlines() if line.strip()}


def test_whole_download_ptbxl_then_nothing_again(shared_server, shared_trees, tmp_path):
    root = tmp_path / "data" / "ptbxl"
    s = download("ptbxl", root, records="all", mirror=shared_server.url("ptbxl"), jobs=3, progress=False)
    tree = shared_trees["ptbxl"]
    assert _files(root) == _listed(tree) | {"SHA256SUMS.txt"}
    for rel in _listed(tree):
        assert (root / rel).read_bytes() == (tree / rel).read_bytes()
    assert s.n_downloaded == len(_listed(tree))
    assert sorted(os.listdir(tmp_path)) == ["data"] and os.listdir(tmp_path / "data") == ["ptbxl"]  # nothing outside
    n_gets = len(shared_server.behaviour.log)
    again = download("ptbxl", root, records="all", mirror=shared_server.url("ptbxl"), progress=False)
    assert again.n_downloaded == 0 and again.n_already == s.n_files
    assert [g[0] for g in shared_server.behaviour.log[n_gets:]] == ["ptbxl/SHA256SUMS.txt"]  # only the list
    reader = get_reader("ptbxl", root)
    assert reader.read("12").signal.shape == (12, 5000)


def test_records_n_takes_the_first_records_and_the_metadata(shared_server, tmp_path):
    root = tmp_path / "ptbxl"
    download("ptbxl", root, records="3", mirror=shared_server.url("ptbxl"), progress=False)
    recs = {p for p in _files(root) if p.startswith("records")}
    assert recs == {
        f"records{r}/00000/{i:05d}_{t}.{x}"
        for i in (1, 2, 3)
        for r, t in ((100, "lr"), (500, "hr"))
        for x in ("hea", "dat")
    }
    assert {"ptbxl_database.csv", "scp_statements.csv", "LICENSE.txt"} <= _files(root)
    # the published default then completes it with the records the published splits name (4..12 here)
    download("ptbxl", root, mirror=shared_server.url("ptbxl"), progress=False)
    assert (root / "records500/00000/00012_hr.dat").is_file()


def test_cpsc2018_takes_only_its_subtree(server, trees, tmp_path):
    root = tmp_path / "cpsc2018"
    download("cpsc2018", root, records="all", mirror=server.url("cpsc2018"), progress=False)
    got = _files(root)
    assert {f"g1/A{i:04d}.{x}" for i in range(1, 7) for x in ("hea", "mat")} <= got
    assert not any("I0001" in p or "st_petersburg" in p for p in got)
    assert not any("st_petersburg" in g[0] for g in server.behaviour.log)
    assert len(get_reader("cpsc2018", root).metadata()) == 6


def test_mimic_and_code15_whole(server, tmp_path):
    mimic = tmp_path / "mimic-iv-ecg"
    download("mimic-iv-ecg", mimic, mirror=server.url("mimic-iv-ecg"), progress=False)
    assert len(get_reader("mimic_iv_ecg", mimic).metadata()) == 6
    code = tmp_path / "code15"
    download("code15", code, mirror=server.url("code15"), progress=False, yes=True)  # 2 of 18 archives: ~11 GB
    assert (code / "exams_part0.hdf5").is_file() and (code / "exams_part1.hdf5").is_file()  # unpacked after the md5
    reader = get_reader("code15", code)
    assert sorted(reader.metadata().index) == ["101", "102", "103", "201", "202"]
    assert reader.read("201").signal.shape[0] == 12


def test_code15_records_n_fetches_the_parts_of_the_first_exams(server, tmp_path):
    code = tmp_path / "code15"
    download("code15", code, records="2", mirror=server.url("code15"), progress=False, yes=True)
    assert (code / "exams_part0.zip").is_file() and not (code / "exams_part1.zip").exists()


def test_corrupted_file_is_fetched_twice_then_refused(server, trees, tmp_path, capsys):
    bad = "mimic-iv-ecg/record_list.csv"
    server.behaviour.corrupt[bad] = b"subject_id,study_id\n1,2\n"
    root = tmp_path / "m"
    with pytest.raises(ChecksumError, match="record_list.csv.*refused"):
        download("mimic-iv-ecg", root, mirror=server.url("mimic-iv-ecg"), progress=False)
    assert len(server.gets("record_list.csv")) == 2
    assert not (root / "record_list.csv").exists()
    assert (
        main(["download", "mimic-iv-ecg", "--root", str(root), "--mirror", server.url("mimic-iv-ecg"), "--no-progress"])
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: record_list.csv: checksum does not match") and "\n" not in err


def test_404_names_the_file(server, tmp_path):
    server.behaviour.missing.add("cpsc2018/training/cpsc_2018/g1/A0003.mat")
    with pytest.raises(DownloadError, match=r"A0003\.mat answered 404"):
        download("cpsc2018", tmp_path / "c", records="all", mirror=server.url("cpsc2018"), progress=False)
    with pytest.raises(DownloadError, match=r"SHA256SUMS\.txt answered 404"):
        download("ptbxl", tmp_path / "p", mirror=server.url("nothing-here"), progress=False)


def test_401_and_403_are_one_line_saying_what_to_do(server, tmp_path, monkeypatch, capsys):
    for k in sources.CREDENTIAL_ENV:
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    server.behaviour.auth = ("alice", "s3cret")
    root = tmp_path / "m"
    with pytest.raises(AccessDeniedError, match="answered 401"):
        download("mimic-iv-ecg", root, mirror=server.url("mimic-iv-ecg"), progress=False)
    assert main(["download", "mimic-iv-ecg", "--root", str(root), "--mirror", server.url("mimic-iv-ecg")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "~/.netrc (machine 127.0.0.1 login" in err and "PHYSIONET_USERNAME" in err
    # credentials from the standard netrc file ...
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login alice password s3cret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    download("mimic-iv-ecg", root, mirror=server.url("mimic-iv-ecg"), progress=False)
    assert (root / "record_list.csv").is_file()
    # ... or from the environment
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("PHYSIONET_USERNAME", "alice")
    monkeypatch.setenv("PHYSIONET_PASSWORD", "s3cret")
    download("cpsc2018", tmp_path / "c", mirror=server.url("cpsc2018"), records="all", progress=False)
    server.behaviour.forbidden = True
    with pytest.raises(AccessDeniedError, match="answered 403"):
        download("cpsc2018", tmp_path / "c2", mirror=server.url("cpsc2018"), progress=False)


def test_dropped_connection_resumes_with_range(server, tmp_path):
    rel = "files/p1000/p10000001/s40000000/40000000.dat"
    path = f"mimic-iv-ecg/{rel}"
    whole = (server.trees["mimic-iv-ecg"] / rel).read_bytes()
    server.behaviour.drop[path] = [2, 40_000]  # the first two answers stop after 40 kB
    root = tmp_path / "m"
    download("mimic-iv-ecg", root, mirror=server.url("mimic-iv-ecg"), progress=False)
    ranges = [r for p, r in server.behaviour.log if p == path]
    assert len(ranges) == 3 and ranges[0] is None
    starts = [int(r.removeprefix("bytes=").rstrip("-")) for r in ranges[1:]]
    assert 0 < starts[0] < starts[1] < len(whole)  # each retry continues where the last one stopped
    assert (root / rel).read_bytes() == whole


def test_killed_halfway_then_resumed(server, tmp_path):
    """A real process killed while a file is half-sent; the rerun continues that file and skips the finished ones."""
    tree = server.trees["cpsc2018"]
    slow = "cpsc2018/training/cpsc_2018/g1/A0004.mat"
    server.behaviour.stall[slow] = 30.0
    root = tmp_path / "c"
    env = {**os.environ, "PYTHONPATH": str(REPO / "packages/ecg-data/src")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ecg_data",
            "download",
            "cpsc2018",
            "--root",
            str(root),
            "--records",
            "all",
            "--mirror",
            server.url("cpsc2018"),
            "--jobs",
            "1",
            "--no-progress",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    part = root / "g1" / ".A0004.mat.part"
    deadline = time.monotonic() + 60
    while not (part.is_file() and part.stat().st_size > 0) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert part.is_file() and part.stat().st_size > 0, "the download never reached the stalled file"
    proc.kill()
    proc.wait()
    half = part.stat().st_size
    done_before = {p for p in _files(root) if p.endswith((".hea", ".mat")) and not p.startswith(".")}
    del server.behaviour.stall[slow]
    n = len(server.behaviour.log)
    download("cpsc2018", root, records="all", mirror=server.url("cpsc2018"), progress=False)
    after = server.behaviour.log[n:]
    assert (slow, f"bytes={half}-") in after
    refetched = {p for p, _ in after} & {f"cpsc2018/training/cpsc_2018/{d}" for d in done_before}
    assert not refetched  # verified files are never downloaded again
    assert (root / "g1/A0004.mat").read_bytes() == (tree / "training/cpsc_2018/g1/A0004.mat").read_bytes()
    assert not part.exists()


def test_disk_space_and_size_confirmation_come_first(server, tmp_path, monkeypatch):
    monkeypatch.setattr(dl, "_free_bytes", lambda root: 1000)
    with pytest.raises(DownloadError, match="GB free"):
        download("mimic-iv-ecg", tmp_path / "m", mirror=server.url("mimic-iv-ecg"), progress=False)
    assert [g[0] for g in server.behaviour.log] == ["mimic-iv-ecg/SHA256SUMS.txt"]
    monkeypatch.setattr(dl, "_free_bytes", lambda root: 10**15)
    big = dataclasses.replace(sources.SOURCES["mimic-iv-ecg"], bytes_estimate=90 * sources.GB, n_records=6)
    monkeypatch.setitem(sources.SOURCES, "mimic-iv-ecg", big)
    with pytest.raises(DownloadError, match="pass --yes"):
        download("mimic-iv-ecg", tmp_path / "m", mirror=server.url("mimic-iv-ecg"), progress=False)
    # at a terminal the question is asked instead; "n" refuses, "y" goes on
    import io

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdin", Tty())
    answers = iter(["n", "y"])
    asked: list[str] = []
    monkeypatch.setattr("builtins.input", lambda q: asked.append(q) or next(answers))
    with pytest.raises(DownloadError, match="pass --yes"):
        download("mimic-iv-ecg", tmp_path / "m", mirror=server.url("mimic-iv-ecg"), progress=False)
    download("mimic-iv-ecg", tmp_path / "m", mirror=server.url("mimic-iv-ecg"), progress=False)
    assert len(asked) == 2 and "about 90 GB" in asked[0]
    assert (tmp_path / "m" / "record_list.csv").is_file()
    download("mimic-iv-ecg", tmp_path / "m2", mirror=server.url("mimic-iv-ecg"), progress=False, yes=True)
    assert (tmp_path / "m2" / "record_list.csv").is_file() and len(asked) == 2


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="--records"):
        download("ptbxl", tmp_path, records="some", mirror="http://127.0.0.1:9/", progress=False)
    with pytest.raises(KeyError, match="downloadable: ptbxl"):
        download("ptb", tmp_path, progress=False)


def test_code15_from_zenodo_api(server, trees, tmp_path, monkeypatch):
    """Without --mirror, CODE-15% comes through pooch's Zenodo support: the record's API lists files and md5s.
    The DOI resolution and the API address are pointed at the loopback server (Zenodo's legacy API form)."""
    import json

    import pooch

    tree = trees["code15"]
    api = tmp_path / "api"
    (api / "records").mkdir(parents=True)
    files = [
        {
            "key": line.split()[1],
            "checksum": f"md5:{line.split()[0]}",
            "links": {"self": server.url("code15") + line.split()[1]},
        }
        for line in (tree / "md5sums.txt").read_text().splitlines()
    ]
    (api / "records" / "4916206").write_text(json.dumps({"id": 4916206, "files": files}))
    server.trees["api"] = api
    monkeypatch.setattr(pooch.downloaders, "doi_to_url", lambda doi, **kw: "https://zenodo.org/records/4916206")
    monkeypatch.setattr(pooch.downloaders.ZenodoRepository, "base_api_url", server.url("api").rstrip("/") + "/records")
    root = tmp_path / "code15"
    download("code15", root, progress=False, yes=True)
    assert (root / "exams_part1.hdf5").is_file()
    kept = {tuple(line.split()) for line in (root / "md5sums.txt").read_text().splitlines()}
    assert kept == {tuple(line.split()) for line in (tree / "md5sums.txt").read_text().splitlines()}
    assert len(get_reader("code15", root).metadata()) == 5
    server.behaviour.corrupt["code15/exams.csv"] = b"exam_id\n1\n"
    with pytest.raises(ChecksumError, match="exams.csv"):
        download("code15", tmp_path / "again", progress=False, yes=True)


def test_parallel_jobs_share_one_progress_bar(server, tmp_path, capsys):
    download("mimic-iv-ecg", tmp_path / "m", mirror=server.url("mimic-iv-ecg"), jobs=3, progress=True)
    err = capsys.readouterr().err
    n = len(_listed(server.trees["mimic-iv-ecg"]))
    last = err.replace("\r", "\n").strip().splitlines()[-1]
    assert last.startswith("download: 100%") and f"files {n}/{n}" in last  # one bar: bytes, rate/ETA, files
    assert err.count("download:") >= 1 and "Downloading file" not in err  # pooch's own per-file messages are off
