"""One evaluation harness for ECG encoders: zero-shot and linear-probe AUROC with bootstrap CIs, result files and the leaderboard.

Modules: ``protocol`` (what is scored), ``embeddings`` (cached features), ``prompts`` + ``zeroshot``, ``probe``,
``metrics``, ``bootstrap``, ``results`` (file layout and schema), ``harness`` (``evaluate``), ``leaderboard``.
Nothing is imported here, so ``import ecg_eval`` stays light.
"""

__version__ = "0.3.0"
