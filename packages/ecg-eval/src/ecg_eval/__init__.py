"""One evaluation harness for ECG encoders: zero-shot and linear-probe AUROC with bootstrap CIs, result files and the leaderboard."""

__version__ = "0.1.0"
