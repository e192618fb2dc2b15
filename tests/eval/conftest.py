"""Small fakes following docs/contracts.md (Task, CachedSplit, encoders) so ecg-eval is tested on its own.

The mock data make AUROCs known in closed form: class ``A`` is carried by feature 0 (perfect separation ->
AUROC 1.0); class ``B`` is balanced against ``A`` in every split and carried by no feature, so any score that
depends on the features gives AUROC exactly 0.5; class ``C`` has no positive in the test split (excluded).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from ecg_eval.protocol import EncoderCard, InputSpec

L = 16  # samples per lead in the fake cache


@dataclass
class FakeReader:
    version: str = "test"

    def fingerprint(self) -> str:
        return "fake-fingerprint"


@dataclass
class FakeTask:
    name: str
    dataset: str
    classes: list[str]
    labels: pd.DataFrame
    splits: dict[str, list[str]]
    root: Path = Path(".")
    dropped: dict[str, str] = field(default_factory=dict)
    suite: str = "synthetic"

    def reader(self) -> FakeReader:
        return FakeReader()

    def y(self, record_ids) -> np.ndarray:
        return self.labels.loc[list(record_ids), self.classes].to_numpy(np.float32)

    def train_subset(self, fraction: float, seed: int) -> list[str]:
        ids = self.splits["train"]
        n = max(1, int(round(fraction * len(ids))))
        # keep the A/B balance: take whole blocks of four records (one of each label combination)
        blocks = [ids[i : i + 4] for i in range(0, len(ids), 4)]
        order = np.random.default_rng(seed).permutation(len(blocks))
        out = [r for b in order[: max(1, n // 4)] for r in blocks[b]]
        return sorted(out)


@dataclass
class FakeSplit:
    record_ids: list[str]
    signals: np.ndarray

    def __len__(self) -> int:
        return len(self.record_ids)


def make_task(
    n_blocks: dict[str, int] | None = None, name: str = "synth_fake"
) -> tuple[FakeTask, dict[str, FakeSplit]]:
    """Every split has n blocks of the four (A, B) combinations; C is positive in some train/val records only."""
    n_blocks = n_blocks or {"train": 10, "val": 4, "test": 5}
    rows, splits, caches = [], {}, {}
    for split, nb in n_blocks.items():
        ids = []
        for b in range(nb):
            for k, (a, bb) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
                rid = f"{split}{b:03d}{k}"
                c = int(split != "test" and k == 0 and b % 2 == 0)
                rows.append({"record_id": rid, "A": a, "B": bb, "C": c})
                ids.append(rid)
        splits[split] = ids
    labels = pd.DataFrame(rows).set_index("record_id").astype(np.int8)
    for split, ids in splits.items():
        sig = np.zeros((len(ids), 12, L), dtype=np.float32)
        sig[:, 0, 0] = labels.loc[ids, "A"].to_numpy()
        sig[:, 1, :] = np.random.default_rng(len(ids)).normal(size=(len(ids), L))  # irrelevant noise lead
        caches[split] = FakeSplit(list(ids), sig)
    task = FakeTask(name=name, dataset="ptbxl", classes=["A", "B", "C"], labels=labels, splits=splits)
    return task, caches


class MockEncoder:
    """Features f = [2A-1, 1, 0]; texts mentioning 'alpha' -> e0, anything else -> e2 (orthogonal to f)."""

    def __init__(self, name: str = "mock", checkpoint: str = "abc123", text: bool = True) -> None:
        self.input_spec = InputSpec(preset="raw100", fs=100, length=L)
        self.card = EncoderCard(name=name, checkpoint_hash=checkpoint, n_parameters=0, pretrained_on=("synth-mimic",))
        self.calls = 0
        if text:
            self.encode_text = self._encode_text

    def encode_ecg(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        a = x[:, 0, 0]
        return torch.stack([2 * a - 1, torch.ones_like(a), torch.zeros_like(a)], dim=1)

    def _encode_text(self, texts: list[str]) -> torch.Tensor:
        out = torch.zeros(len(texts), 3)
        for i, t in enumerate(texts):
            out[i, 0 if "alpha" in t.lower() else 2] = 1.0
        return out


@pytest.fixture
def fake_task():
    return make_task()


@pytest.fixture
def prompt_file(tmp_path: Path) -> Path:
    p = tmp_path / "prompts.json"
    p.write_text(json.dumps({"A": ["alpha wave"], "B": "beta, gamma", "C": ["gamma"]}))
    return p


@pytest.fixture
def loader(fake_task):
    _, caches = fake_task
    return lambda task, split, preset: caches[split]


@pytest.fixture
def Mock():
    """The MockEncoder class (tests import nothing from conftest: pytest runs with --import-mode=importlib)."""
    return MockEncoder
