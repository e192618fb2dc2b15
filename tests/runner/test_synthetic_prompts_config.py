"""The runner's configs score the synthetic tasks with the corpus-wording prompt file and the real tasks with the
project's clinical one (hydra lives with the runner, not in ecg-eval's own test environment)."""

from __future__ import annotations

from pathlib import Path


def test_the_runner_scores_synthetic_tasks_with_the_corpus_wording(tmp_path: Path) -> None:
    from hydra import compose, initialize_config_dir

    repo = Path(__file__).resolve().parents[2]
    with initialize_config_dir(config_dir=str(repo / "configs"), version_base="1.3"):
        cfg = compose(config_name="config")
        real = compose(config_name="config", overrides=["dataset=ptbxl_super"])
    assert cfg.dataset.prompts == "synthetic" and cfg.eval.prompts is None
    assert real.dataset.get("prompts") is None  # real tasks keep the project's clinical prompt file
