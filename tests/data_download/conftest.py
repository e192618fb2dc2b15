"""A real HTTP server on 127.0.0.1 serving publisher-layout trees with their checksum files.

PTB-XL comes from ../shared/data/ptbxl-500 and G12EC/CSN from ../shared/data/cinc2021-sample (tests that need them
skip with a reason when ../shared is absent); CPSC2018 and MIMIC-IV-ECG from the synthetic writers; CODE-15% from
small HDF5 archives written here. The server understands ``Range`` and can be told to answer 401/404, to serve a
corrupted file, to drop a connection half-way, or to stall mid-file (the kill-and-resume test).
"""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
import threading
import time
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest


@dataclass
class Behaviour:
    auth: tuple[str, str] | None = None  # Basic credentials required (else 401)
    forbidden: bool = False  # 403 for everything
    missing: set[str] = field(default_factory=set)  # paths answered 404
    corrupt: dict[str, bytes] = field(default_factory=dict)  # path -> bytes served instead of the file
    drop: dict[str, list[int]] = field(default_factory=dict)  # path -> [times left, bytes sent before dropping]
    stall: dict[str, float] = field(default_factory=dict)  # path -> seconds to sleep after half the file
    log: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range header) per GET


class Server:
    def __init__(self) -> None:
        self.trees: dict[str, Path] = {}
        self.behaviour = Behaviour()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):  # quiet
                pass

            def do_GET(self):  # noqa: N802
                b = server.behaviour
                path = self.path.split("?", 1)[0].lstrip("/")
                b.log.append((path, self.headers.get("Range")))
                if b.forbidden:
                    return self._plain(403, b"forbidden")
                if b.auth:
                    want = "Basic " + base64.b64encode(f"{b.auth[0]}:{b.auth[1]}".encode()).decode()
                    if self.headers.get("Authorization") != want:
                        return self._plain(401, b"login required", {"WWW-Authenticate": 'Basic realm="test"'})
                name, _, rel = path.partition("/")
                tree = server.trees.get(name)
                file = tree / rel if tree else None
                if path in b.missing or file is None or not file.is_file():
                    return self._plain(404, b"not found")
                data = b.corrupt.get(path, file.read_bytes())
                start = 0
                m = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
                if m:
                    start = int(m.group(1))
                    if start >= len(data):
                        return self._plain(416, b"", {"Content-Range": f"bytes */{len(data)}"})
                body = data[start:]
                self.send_response(206 if m else 200)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Accept-Ranges", "bytes")
                if m:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                drop = b.drop.get(path)
                if drop and drop[0] > 0:
                    drop[0] -= 1
                    self.wfile.write(body[: drop[1]])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if path in b.stall:
                    half = len(body) // 2
                    self.wfile.write(body[:half])
                    self.wfile.flush()
                    time.sleep(b.stall[path])
                    self.wfile.write(body[half:])
                    return
                self.wfile.write(body)

            def _plain(self, code, body, headers=None):
                self.send_response(code)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}/"

    def gets(self, suffix: str = "") -> list[tuple[str, str | None]]:
        return [g for g in self.behaviour.log if g[0].endswith(suffix)]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def write_sums(tree: Path, name: str = "SHA256SUMS.txt", algo: str = "sha256") -> None:
    lines = []
    for p in sorted(tree.rglob("*")):
        if p.is_file() and p.name != name:
            lines.append(f"{hashlib.new(algo, p.read_bytes()).hexdigest()} {p.relative_to(tree).as_posix()}")
    (tree / name).write_text("\n".join(lines) + "\n")


# -- publisher trees ---------------------------------------------------------------------------------------------
PTBXL_RECORDS = range(1, 13)


def build_ptbxl(sample: Path, out: Path) -> Path:
    """PTB-XL 1.0.3 layout from the sample: its metadata and the first 12 records at both rates."""
    out.mkdir(parents=True)
    for f in ("ptbxl_database.csv", "scp_statements.csv", "LICENSE.txt"):
        shutil.copy(sample / f, out / f)
    for i in PTBXL_RECORDS:
        for rate, tag in ((100, "lr"), (500, "hr")):
            for ext in ("hea", "dat"):
                rel = f"records{rate}/00000/{i:05d}_{tag}.{ext}"
                (out / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(sample / rel, out / rel)
    write_sums(out)
    return out


def build_cpsc(out: Path) -> Path:
    """Challenge 2020 layout: training/cpsc_2018/g1/A*.{hea,mat} beside another source that must not come."""
    from ecg_data.synthetic.generate import generate_records
    from ecg_data.synthetic.writers import write_cinc2020

    write_cinc2020(out / "training/cpsc_2018/g1", generate_records(6, seed=1, profile="cpsc"), prefix="A")
    write_cinc2020(out / "training/st_petersburg_incart/g1", generate_records(2, seed=2), prefix="I")
    (out / "LICENSE.txt").write_text("CC BY 4.0\n")
    write_sums(out)
    return out


def build_g12ec(sample: Path, out: Path) -> Path:
    """Challenge 2021 layout: training/georgia/g1/E*.{hea,mat} (the sample's Georgia records)."""
    dest = out / "training/georgia/g1"
    dest.mkdir(parents=True)
    for f in sorted(sample.glob("E*")):
        shutil.copy(f, dest / f.name)
    other = out / "training/ptb-xl/g1"
    other.mkdir(parents=True)
    for f in sorted(sample.glob("HR*"))[:4]:
        shutil.copy(f, other / f.name)
    (out / "LICENSE.txt").write_text("CC BY 4.0\n")
    write_sums(out)
    return out


def build_csn(sample: Path, out: Path) -> Path:
    """ecg-arrhythmia 1.0.0 layout: WFDBRecords/01/010/JS*.{hea,mat} and ConditionNames_SNOMED-CT.csv."""
    dest = out / "WFDBRecords/01/010"
    dest.mkdir(parents=True)
    for f in sorted(sample.glob("JS*")):
        shutil.copy(f, dest / f.name)
    codes = sorted(
        {
            c
            for h in sample.glob("JS*.hea")
            for line in h.read_text().splitlines()
            if line.startswith("#Dx") or line.startswith("# Dx")
            for c in line.split(":", 1)[1].strip().split(",")
        }
    )
    pd.DataFrame(
        {"Acronym Name": [f"C{c}" for c in codes], "Full Name": [f"condition {c}" for c in codes], "Snomed_CT": codes}
    ).to_csv(out / "ConditionNames_SNOMED-CT.csv", index=False)
    write_sums(out)
    return out


def build_mimic(out: Path) -> Path:
    from ecg_data.synthetic.generate import generate_records
    from ecg_data.synthetic.writers import write_mimic_iv_ecg

    write_mimic_iv_ecg(out, generate_records(6, seed=3, profile="mimic"))
    write_sums(out)
    return out


def build_code15(out: Path) -> Path:
    """CODE-15% as on Zenodo: exams.csv and exams_partN.zip (each holding exams_partN.hdf5); md5sums.txt."""
    import h5py

    out.mkdir(parents=True)
    parts = {0: [101, 102, 103], 1: [201, 202]}
    rng = np.random.default_rng(0)
    for k, ids in parts.items():
        h5 = out / f"exams_part{k}.hdf5"
        with h5py.File(h5, "w") as f:
            tr = np.zeros((len(ids) + 1, 4096, 12), np.float32)
            t = np.arange(4000) / 400
            for i in range(len(ids)):
                tr[i, 48:4048] = np.sin(2 * np.pi * 1.2 * t)[:, None] * (1 + 0.1 * rng.normal(size=12))[None]
            f.create_dataset("tracings", data=tr)
            f.create_dataset("exam_id", data=np.array(ids + [0], dtype=np.int64))
        with zipfile.ZipFile(out / f"exams_part{k}.zip", "w", zipfile.ZIP_DEFLATED) as z:
            z.write(h5, h5.name)
        h5.unlink()
    classes = ["1dAVb", "RBBB", "LBBB", "SB", "ST", "AF"]
    rows = [
        {
            "exam_id": e,
            "age": 60,
            "is_male": True,
            "nn_predicted_age": 61.0,
            **{c: c == "AF" and e == 101 for c in classes},
            "patient_id": i,
            "death": "",
            "timey": "",
            "normal_ecg": e != 101,
            "trace_file": f"exams_part{k}.hdf5",
        }
        for i, (k, e) in enumerate((k, e) for k, ids in parts.items() for e in ids)
    ]
    pd.DataFrame(rows).to_csv(out / "exams.csv", index=False)
    lines = [f"{hashlib.md5(p.read_bytes()).hexdigest()}  {p.name}" for p in sorted(out.iterdir())]
    (out / "md5sums.txt").write_text("\n".join(lines) + "\n")
    return out


@pytest.fixture(scope="session")
def trees(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The synthetic publisher trees (no ../shared needed)."""
    base = tmp_path_factory.mktemp("publisher")
    return {
        "cpsc2018": build_cpsc(base / "cpsc2018"),
        "mimic-iv-ecg": build_mimic(base / "mimic-iv-ecg"),
        "code15": build_code15(base / "code15"),
    }


@pytest.fixture(scope="session")
def shared_trees(tmp_path_factory: pytest.TempPathFactory, ptbxl500: Path, cinc_sample: Path) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("publisher-shared")
    return {
        "ptbxl": build_ptbxl(ptbxl500, base / "ptbxl"),
        "g12ec": build_g12ec(cinc_sample, base / "g12ec"),
        "csn": build_csn(cinc_sample, base / "csn"),
    }


@pytest.fixture
def server(trees: dict[str, Path]):
    s = Server()
    s.trees.update(trees)
    yield s
    s.close()


@pytest.fixture
def shared_server(server: Server, shared_trees: dict[str, Path]) -> Server:
    server.trees.update(shared_trees)
    return server
