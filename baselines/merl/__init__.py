"""MERL (Liu et al., ICML 2024, "Zero-Shot ECG Classification with Multimodal Learning and Test-time
Clinical Knowledge Enhancement"; cheliu-computation/MERL-ICML2024) under the shared protocol."""
