"""ECG and text encoders of ECG-language methods (wav2vec2-style, ResNet18-1D, ConvNeXt-V2-1D, HeartLang) as plain torch modules."""

__version__ = "0.2.2"
