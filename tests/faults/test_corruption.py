"""Corrupted inputs are detected by the checksums recorded when they were written, then rebuilt or refused -- never
silently used (docs/reliability.md): result JSON and predictions (truncated, bit-flipped), an embedding cache entry,
the record cache's ``signals.npy``, exported safetensors (model directory and stage export). Also: a write that fails
(file-size limit = full disk, read-only directory) names the path and leaves no file a rerun would trust.
"""

from __future__ import annotations

import errno
import importlib.util
import logging
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from fault_tools import REPO, SRC

from ecg_data.integrity import CorruptFileError, checksum_path, verify_checksum, write_checksum

pytestmark = pytest.mark.faults


def flip(path: Path, at: float = 0.5) -> None:
    """Flip one bit in the middle of a file (what a bad disk or a bad copy does)."""
    data = bytearray(path.read_bytes())
    i = min(len(data) - 1, int(len(data) * at))
    data[i] ^= 0x10
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _result(**over):
    from ecg_eval.results import SCHEMA_VERSION

    return {
        "schema_version": SCHEMA_VERSION,
        "status": "ok",
        "method": "m",
        "checkpoint_hash": "abc",
        "task": "t",
        "suite": "synthetic",
        "mode": "zero_shot",
        "fraction": None,
        "seed": 0,
        "predictions": None,
        "scores": {"macro_auroc": 0.8125, "per_class_auroc": {"A": 0.8125}},
        **over,
    }


def test_checksum_record_detects_truncation_and_bit_flips(tmp_path) -> None:
    f = tmp_path / "x.bin"
    f.write_bytes(os.urandom(4096))
    write_checksum(f)
    assert verify_checksum(f)
    flip(f)
    with pytest.raises(CorruptFileError, match=r"x\.bin: sha256 differs"):
        verify_checksum(f)
    truncate(f)
    with pytest.raises(CorruptFileError, match=r"x\.bin: 2048 bytes, but 4096 were written"):
        verify_checksum(f)
    (tmp_path / "legacy.bin").write_bytes(b"written before checksums")
    assert verify_checksum(tmp_path / "legacy.bin") is False  # no record: read as before
    with pytest.raises(CorruptFileError, match="no checksum record"):
        verify_checksum(tmp_path / "legacy.bin", required=True)


@pytest.mark.parametrize("damage", [truncate, flip], ids=["truncated", "bit-flipped"])
def test_result_json_corrupt_is_refused_and_recomputed(tmp_path, damage) -> None:
    from ecg_eval.results import is_complete, read_result, write_result

    path = tmp_path / "zero_shot-seed0.json"
    write_result(path, _result())
    assert is_complete(path, "abc")
    damage(path)
    with pytest.raises(CorruptFileError, match="zero_shot-seed0.json"):
        read_result(path)
    assert not is_complete(path, "abc")  # the runner computes the cell again
    write_result(path, _result())  # ... and the rewrite is trusted again
    assert is_complete(path, "abc") and read_result(path)["scores"]["macro_auroc"] == 0.8125


@pytest.mark.parametrize("damage", [truncate, flip], ids=["truncated", "bit-flipped"])
def test_predictions_file_corrupt_is_refused_and_cell_recomputed(tmp_path, damage) -> None:
    from ecg_eval.results import is_complete, read_predictions, write_predictions, write_result

    pred = tmp_path / "linear_probe-100-seed0.predictions.npz"
    write_predictions(pred, ["a", "b", "c"], ["X"], np.array([[1], [0], [1]]), np.array([[0.9], [0.1], [0.7]]))
    path = tmp_path / "linear_probe-100-seed0.json"
    write_result(path, _result(mode="linear_probe", fraction=1.0, predictions=pred.name))
    assert is_complete(path, "abc") and read_predictions(pred)["scores"].shape == (3, 1)
    damage(pred)
    with pytest.raises(CorruptFileError, match="predictions.npz"):
        read_predictions(pred)
    assert not is_complete(path, "abc")


def test_embedding_cache_entry_corrupt_is_recomputed(tmp_path, caplog) -> None:
    from ecg_eval.embeddings import embed_split

    class Card:
        checkpoint_hash, name = "h" * 16, "stub"

    class Enc:
        card = Card()
        calls = 0

        def encode_records(self, task, split, ids):
            Enc.calls += 1
            return np.arange(len(ids) * 4, dtype=np.float32).reshape(len(ids), 4) / 7

    class Split:
        record_ids = ["r1", "r2", "r3"]

    class Task:
        name, dataset = "t", "d"

        def fingerprint(self):
            return "fp"

    def loader(task, split, preset):
        return Split()

    import ecg_eval.embeddings as emb

    orig = (emb.preset_for, emb.preset_key, emb.dataset_fingerprint)
    emb.preset_for, emb.preset_key, emb.dataset_fingerprint = (lambda e, t: "p"), (lambda e, t: "p"), (lambda t: "fp")
    try:
        first = embed_split(Enc(), Task(), "test", cache_dir=tmp_path, split_loader=loader)
        assert not first.from_cache and Enc.calls == 1
        again = embed_split(Enc(), Task(), "test", cache_dir=tmp_path, split_loader=loader)
        assert again.from_cache and Enc.calls == 1
        feats = next(tmp_path.glob("*/features.npy"))
        flip(feats, at=0.9)  # in the float data, after the .npy header: still loads, wrong numbers
        with caplog.at_level(logging.WARNING, logger="ecg_eval.embeddings"):
            third = embed_split(Enc(), Task(), "test", cache_dir=tmp_path, split_loader=loader)
        assert not third.from_cache and Enc.calls == 2  # recomputed, not used
        assert any("corrupt" in r.getMessage() for r in caplog.records)
        np.testing.assert_array_equal(third.features, first.features)
    finally:
        emb.preset_for, emb.preset_key, emb.dataset_fingerprint = orig


def _data_cache_helpers():
    spec = importlib.util.spec_from_file_location("data_cache_helpers", REPO / "tests" / "data_cache" / "conftest.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look themselves up there
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("damage", [truncate, flip], ids=["truncated", "bit-flipped"])
def test_record_cache_signals_corrupt_is_rebuilt(tmp_path, monkeypatch, damage, caplog) -> None:
    import ecg_data.cache as cache_mod
    from ecg_data.cache import CachedSplit, CorruptCacheError, build_cache

    h = _data_cache_helpers()
    root = h.write_fake_dataset(tmp_path / "fake", [h.FakeSpec(str(i), n_samples=1000) for i in range(1, 5)])
    monkeypatch.setenv("ECG_CACHE", str(tmp_path / "cache"))
    ids = ["1", "2", "3", "4"]
    first = build_cache(h.FakeWFDBReader(root), ids, "raw100", workers=1, progress=False)
    want = np.array(first.signals)
    sig = first.path / "signals.npy"
    damage(sig)
    cache_mod._VERIFIED.clear()  # a new process: nothing verified yet
    with pytest.raises(CorruptCacheError, match="signals.npy"):
        CachedSplit.open(first.path)
    with caplog.at_level(logging.WARNING, logger="ecg_data.cache"):
        rebuilt = build_cache(h.FakeWFDBReader(root), ids, "raw100", workers=1, progress=False)
    assert any("rebuilding" in r.getMessage() for r in caplog.records)
    np.testing.assert_array_equal(np.array(rebuilt.signals), want)


def test_exported_safetensors_corrupt_is_refused(tmp_path) -> None:
    from baselines.random_init.model import RandomInitEncoder
    from benchmarks.pipeline.export_hook import load_stage_weights, write_stage_weights
    from ecg_text_align.pretrained import from_pretrained, save_pretrained

    export = save_pretrained(RandomInitEncoder(), tmp_path / "export")
    assert from_pretrained(export) is not None
    flip(export / "model.safetensors", at=0.8)
    with pytest.raises(CorruptFileError, match=r"model\.safetensors: sha256 differs"):
        from_pretrained(export)

    stage = write_stage_weights(
        {"state_dict": {"w": torch.arange(1000.0)}, "global_step": 3},
        tmp_path / "stage",
        method="m",
        stage="s",
        source="last.ckpt",
    )
    assert torch.equal(load_stage_weights(stage)["w"], torch.arange(1000.0))
    flip(stage / "model.safetensors", at=0.9)
    with pytest.raises(CorruptFileError, match=r"model\.safetensors: sha256 differs"):
        load_stage_weights(stage)


_WRITER = """
import json, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a kill, as on a full disk (ENOSPC)
from ecg_eval.results import SCHEMA_VERSION, write_result
r = {"schema_version": SCHEMA_VERSION, "status": "ok", "method": "m", "checkpoint_hash": "abc", "task": "t",
     "suite": "synthetic", "mode": "zero_shot", "fraction": None, "seed": 0, "pad": "x" * 100000,
     "scores": {"macro_auroc": 0.5, "per_class_auroc": {"A": 0.5}}}
try:
    write_result(sys.argv[1], r)
except OSError as err:
    print("ERROR", err)
    sys.exit(3)
"""


def test_full_disk_names_the_path_and_leaves_no_partial_file(tmp_path) -> None:
    """A file-size limit (RLIMIT_FSIZE, 16 KiB) stands for a full disk: the write fails with the path in the message,
    and neither the result nor a temporary file is left for a rerun to trust."""
    out = tmp_path / "results" / "zero_shot-seed0.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*SRC, str(REPO)])}

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (16384, 16384))

    proc = subprocess.run(
        [sys.executable, "-c", _WRITER, str(out)],
        env=env,
        capture_output=True,
        text=True,
        preexec_fn=limit,
        timeout=120,
    )
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert f"cannot write {out}" in proc.stdout and "File too large" in proc.stdout
    assert not out.exists() and not checksum_path(out).exists()
    assert [p.name for p in out.parent.iterdir()] == []  # no temporary file either


def test_read_only_output_directory_names_the_path(tmp_path) -> None:
    from ecg_eval.results import write_result

    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        probe = ro / ".probe"
        try:
            probe.write_text("x")
            probe.unlink()
            pytest.skip("this user writes into read-only directories (root): see the validation test instead")
        except OSError:
            pass
        with pytest.raises(OSError, match=f"cannot write {ro / 'r.json'}"):
            write_result(ro / "r.json", _result())
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o700)
    assert signal.SIGXFSZ  # the full-disk test relies on it (POSIX)


def test_read_only_output_directory_simulated_erofs_names_the_path(tmp_path, monkeypatch) -> None:
    """The same, on a SIMULATED read-only file system (``fault_tools.simulate_read_only``: every write below the
    directory fails with EROFS at the ``os``/``open`` level), so that it also runs as root, where mode bits stop
    nothing. The result write fails naming the path and leaves nothing; the up-front validation refuses the
    directory, and a directory to be created below it, in one line."""
    from fault_tools import simulate_read_only

    from benchmarks.pipeline import ConfigError
    from benchmarks.pipeline.validate import check_writable
    from ecg_eval.results import write_result

    ro = tmp_path / "ro"
    (ro / "results").mkdir(parents=True)
    simulate_read_only(monkeypatch, ro)
    with pytest.raises(OSError) as err:  # the simulation is in force: a plain write is refused too
        (ro / "probe").write_text("x")
    assert err.value.errno == errno.EROFS
    target = ro / "results" / "zero_shot-seed0.json"
    with pytest.raises(OSError, match=f"cannot write {re.escape(str(target))}: Read-only file system"):
        write_result(target, _result())
    assert not target.exists() and not checksum_path(target).exists()
    assert list((ro / "results").iterdir()) == []  # no temporary file either
    for where in (ro, ro / "new" / "dir"):
        with pytest.raises(
            ConfigError,
            match=f"output_dir={re.escape(str(where))}: {re.escape(str(ro))} is not "
            r"writable \(Read-only file system\)",
        ):
            check_writable(str(where), "output_dir")


@pytest.mark.slow
def test_full_disk_through_run_py_one_line_then_rerun_completes(tmp_path) -> None:
    """``benchmarks/run.py`` under a 300-byte file-size limit: ``error: cannot write <path>: File too large`` (exit
    1, no traceback, no partial file); the same command without the limit then completes."""
    toy = REPO / "tests" / "runner" / "toy"
    args = [
        sys.executable,
        str(REPO / "benchmarks" / "run.py"),
        "method=toy",
        "dataset=toy",
        f"method_dir={toy}",
        "backend._target_=ecgbench_toy.ToyBackend",
        "eval=quick",
        f"run_store={tmp_path / 'runs'}",
        f"output_dir={tmp_path / 'out'}",
        "hydra.output_subdir=null",
        "hydra/job_logging=stdout",
        "pretrain_data.n=96",
    ]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([*SRC, str(REPO)]),
        "PYTHONDONTWRITEBYTECODE": "1",
        "OMP_NUM_THREADS": "1",
    }

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG, as ENOSPC on a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (300, 300))

    warm = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert warm.returncode == 0, warm.stderr[-3000:]  # the synthetic corpus exists: the limit hits our writes
    for d in ("runs", "out"):
        shutil.rmtree(tmp_path / d)
    full = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, preexec_fn=limit, timeout=300)
    assert full.returncode == 1 and "Traceback" not in full.stderr, full.stderr[-3000:]
    lines = [l for l in full.stderr.splitlines() if l.startswith("error:")]
    assert len(lines) == 1 and re.match(r"error: cannot write .*/runs/toy/.*config\.yaml: File too large$", lines[0])
    assert not list((tmp_path / "runs").rglob("config.yaml")) and not list((tmp_path / "runs").rglob("*.tmp"))
    again = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert list((tmp_path / "out" / "results").rglob("*.json"))
