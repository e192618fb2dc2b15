"""ECG encoders, one module each, found by name through ``ecg_encoders.registry.ECG_ENCODERS``.

Nothing is imported here on purpose: choosing one architecture must not import the others.
Every module defines ``PRESETS`` (with ``"tiny"``), ``PAPER_PRESETS`` and a ``build_<name>`` factory.
"""
