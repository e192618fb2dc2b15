"""Result files say what produced them: every installed distribution and the committed lock's hashes (issue #10)."""

from __future__ import annotations

import hashlib
import importlib.metadata as md
from pathlib import Path

from ecg_eval.results import PACKAGES, environment, lock_hashes

REPO = Path(__file__).resolve().parents[2]


def test_environment_names_the_headline_packages_and_every_distribution(monkeypatch) -> None:
    monkeypatch.chdir(REPO)
    env = environment()
    for name in ("lightning", "transformers", "pandas", "torch", "numpy"):
        assert name in env["packages"]  # None only where not installed (e.g. ecg-eval alone)
    assert env["packages"]["pandas"] == md.version("pandas")
    assert env["installed"]["numpy"] == md.version("numpy")
    assert list(env["installed"]) == sorted(env["installed"])
    assert set(PACKAGES) - set(env["packages"]) == set()


def test_lock_hashes_are_those_of_the_committed_files(monkeypatch, tmp_path) -> None:
    monkeypatch.chdir(REPO / "packages")  # found from a subfolder too
    got = lock_hashes()
    for name in ("uv.lock", "constraints.txt"):
        assert got[name] == hashlib.sha256((REPO / name).read_bytes()).hexdigest()[:16]
    (tmp_path / "uv.lock").write_text("x")
    assert lock_hashes(tmp_path) == {"uv.lock": hashlib.sha256(b"x").hexdigest()[:16]}
