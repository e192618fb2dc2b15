"""The synthetic tasks' prompt file speaks the corpus's own wording: every class of every synthetic task has prompts,
each prompt is a statement the corpus writes (recognised by the report-statement vocabulary), and the runner picks
the file for the synthetic suite unless eval.prompts says otherwise."""

from __future__ import annotations

import pytest

from ecg_data.synthetic.reports import ACUTE, STATEMENTS, SUMMARY
from ecg_data.tasks import get_task
from ecg_eval.prompts import PromptError, class_prompts, load_prompt_file, packaged_prompt_path, resolve_prompt_path
from ecg_eval.statements import default_vocabulary

SYNTHETIC_TASKS = ("synth_ptbxl_super", "synth_ptbxl_sub", "synth_ptbxl_form", "synth_ptbxl_rhythm", "synth_cpsc2018")


def test_packaged_names_resolve() -> None:
    assert packaged_prompt_path("synthetic").name == "synthetic.json"
    assert resolve_prompt_path("default") == resolve_prompt_path(None)
    assert packaged_prompt_path("../synthetic") is None and packaged_prompt_path("nonexistent") is None
    with pytest.raises(PromptError, match="does not exist"):
        load_prompt_file("nonexistent")


@pytest.mark.parametrize("task_name", SYNTHETIC_TASKS)
def test_every_synthetic_class_is_described_in_corpus_statements(task_name: str) -> None:
    from ecg_data.synthetic import ensure_preset

    preset = "synth-cpsc2018" if "cpsc" in task_name else "synth-ptbxl"
    task = get_task(task_name, root=ensure_preset(preset, n=60, seed=1))
    prompts = class_prompts(list(task.classes), dataset=task.dataset, path="synthetic")
    corpus = (
        {s for v in STATEMENTS.values() for s in v} | {s for v in ACUTE.values() for s in v} | set(SUMMARY.values())
    )
    vocab = default_vocabulary()
    for cls, texts in prompts.items():
        assert texts, cls
        for t in texts:
            assert t in corpus or t == "Sinus rhythm. Normal ECG", (cls, t)
            assert vocab.recognise(t), (cls, t)  # the statement vocabulary reads it, as in a report
