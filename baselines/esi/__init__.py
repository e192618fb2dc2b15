"""ESI (Yu et al., 2024, "ECG Semantic Integrator"; comp-well-org/ESI) under the shared protocol:
ConvNeXt-V2-1D, contrastive + captioning loss with a causal text stack, knowledge-enriched captions."""
