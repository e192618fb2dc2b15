"""HeartLang (Jin et al., ICLR 2025, "Reading Your Heart: Learning ECG Words and Sentences via Pre-training ECG
Language Model"; PKUDigitalHealth/HeartLang): VQ heartbeat reconstruction, then masked ECG-sentence
pretraining. ECG-only: no text tower, so zero-shot is "not applicable"."""
