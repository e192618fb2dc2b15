"""``python -m ecg_encoders.summary``."""

from __future__ import annotations

import pytest

from ecg_encoders import summary
from ecg_encoders.registry import ECG_ENCODERS


def test_every_registered_encoder_is_reported() -> None:
    # tiny presets only for all encoders (paper sizes of other modules may need a CPU build: slow)
    rows = summary.encoder_rows(include_paper=False)
    assert {r["encoder"] for r in rows} == set(ECG_ENCODERS.names())
    for r in rows:
        assert r["status"] == "ok" or r["status"].startswith(("missing", "error")), r
        if r["status"] == "ok":
            assert r["preset"] == "tiny" and r["params"] > 0
    w2v = {r["preset"]: r["params"] for r in summary.encoder_rows(["wav2vec2"]) if r["status"] == "ok"}
    assert w2v["melp"] == 62_022_528 and 0 < w2v["tiny"] < 1_000_000


def test_missing_module_is_reported_not_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    from ecg_data.registry import LazyRegistry

    fake = LazyRegistry("ECG encoder", {"ghost": "ecg_encoders.ecg.ghost_module:build_ghost"})
    monkeypatch.setattr(summary, "ECG_ENCODERS", fake)
    rows = summary.encoder_rows()
    assert len(rows) == 1 and rows[0]["status"].startswith("missing") and "ghost_module" in rows[0]["status"]


def test_cli_prints_tables(capsys: pytest.CaptureFixture[str]) -> None:
    assert summary.main(["--encoders", "wav2vec2"]) == 0
    out = capsys.readouterr().out
    assert "62,022,528" in out and "65,593,344" in out and "tiny" in out
