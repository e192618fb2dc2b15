"""Random init: MELP's ECG tower with random weights from a fixed seed, probed like every other method."""
