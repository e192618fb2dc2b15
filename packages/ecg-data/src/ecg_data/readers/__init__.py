"""Dataset readers, found by name.

``get_reader("ptbxl", root, fs=500)`` returns a ``DatasetReader``; modules are imported only when
their name is asked for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ecg_data.readers.base import DatasetReader, iter_records, safe_read
from ecg_data.registry import LazyRegistry

READERS = LazyRegistry(
    "dataset reader",
    {
        "ptbxl": "ecg_data.readers.ptbxl.PTBXLReader",
        "cpsc2018": "ecg_data.readers.cpsc2018.CPSC2018Reader",
        "cpsc2018_original": "ecg_data.readers.cpsc2018.CPSC2018OriginalReader",
        "csn": "ecg_data.readers.csn.CSNReader",
        "mimic_iv_ecg": "ecg_data.readers.mimic_iv_ecg.MIMICIVECGReader",
        "g12ec": "ecg_data.readers.g12ec.G12ECReader",
        "code15": "ecg_data.readers.code15.CODE15Reader",
        "code_test": "ecg_data.readers.code15.CODETestReader",
    },
)


def get_reader(name: str, root: str | Path, **kw: Any) -> DatasetReader:
    """Build the reader registered under ``name`` for the dataset at ``root``."""
    return READERS.build(name, root, **kw)


__all__ = ["READERS", "DatasetReader", "get_reader", "iter_records", "safe_read"]
