"""ECG-text pretraining: shared Lightning protocol, contrastive/captioning/local losses, and MELP."""

__version__ = "0.3.0"
