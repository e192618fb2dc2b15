"""ECG datasets for ECG-language benchmarks: PhysioNet readers, protocol splits, preprocessing presets, a memory-mapped record cache and a synthetic 12-lead corpus."""

__version__ = "0.2.3"
