"""ESI's statement -> description knowledge: matching, enrichment, counting of what has no description."""

from __future__ import annotations

import json
import logging

import pytest

from baselines.esi.knowledge import DEFAULT_FILE, KnowledgeBase, normalize


def test_normalisation_and_statement_split():
    assert normalize("1st degree A-V block.") == normalize("1st degree av block") == "1st degree av block"
    assert normalize("ST depression, consider ischemia") == "st depression consider ischemia"


def test_enrichment_counts_matched_and_unmatched(caplog):
    kb = KnowledgeBase({"_about": "meta", "sinus rhythm": "P before every QRS.", "lbbb": "Wide QRS, broad R in V6."})
    cap = kb.enrich("Sinus rhythm. LBBB. Weird new finding.")
    assert cap == (
        "ECG findings: Sinus rhythm, LBBB, Weird new finding. Potential ECG waveforms: "
        "P before every QRS. Wide QRS, broad R in V6."
    )
    assert kb.matched == 2 and kb.unmatched == {"weird new finding": 1}
    assert kb.coverage() == pytest.approx(2 / 3)
    # a compound statement matches when each of its "with" parts does
    assert kb.enrich("Sinus rhythm with LBBB").endswith("P before every QRS. Wide QRS, broad R in V6.")
    kb2 = KnowledgeBase({"af with slow response": "AF slow.", "pvcs": "PVC.", "af": "AF."})
    assert kb2.describe("AF with slow response with PVCs") == ["AF slow.", "PVC."] and kb2.matched == 1
    with caplog.at_level(logging.WARNING, logger="baselines.esi.knowledge"):
        kb.log_summary()
    assert "1 statements without a description" in caplog.text and "weird new finding" in caplog.text


def test_plugging_in_another_description_file(tmp_path):
    f = tmp_path / "llm.json"
    f.write_text(json.dumps({"Sinus rhythm": "LLM text about sinus rhythm."}))
    kb = KnowledgeBase.from_file(f)
    assert "LLM text about sinus rhythm." in kb.enrich("Sinus rhythm.")
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.raises(ValueError, match="bad.json.*JSON object"):
        KnowledgeBase.from_file(bad)
    bad.write_text('{"x": ""}')
    with pytest.raises(ValueError, match="non-empty"):
        KnowledgeBase.from_file(bad)
    with pytest.raises(FileNotFoundError, match="missing.json"):
        KnowledgeBase.from_file(tmp_path / "missing.json")


def test_shipped_file_covers_the_synthetic_report_vocabulary():
    """Every statement the synthetic MIMIC-style generator writes has a description (measured, not assumed)."""
    from ecg_data.synthetic import generate_records

    kb = KnowledgeBase.from_file(DEFAULT_FILE)
    for rec in generate_records(300, seed=3):
        kb.enrich(rec.report)
    assert kb.matched > 600
    assert kb.coverage() >= 0.99, kb.unmatched.most_common(5)
