"""Tiny stand-ins following the contracts (ECG tower output, HFTextEncoder API) so tests need no hub model."""

from __future__ import annotations

import re
from dataclasses import dataclass

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ecg_data.loader import item_loader
from ecg_text_align.losses import LogitScale, clip_loss
from ecg_text_align.module import PretrainModule


@dataclass
class TowerOut:
    pooled: torch.Tensor
    beats: torch.Tensor
    caption_tokens: torch.Tensor
    tokens: torch.Tensor


class TinyTower(nn.Module):
    """(B, 12, T) -> beats (B, n_q, shared), caption tokens (B, n_cap, cap_dim) via strided conv + linear maps."""

    def __init__(
        self, shared_dim: int = 8, caption_dim: int = 16, n_queries_contrast: int = 3, n_queries_caption: int = 4
    ):
        super().__init__()
        self.conv = nn.Conv1d(12, 16, kernel_size=50, stride=50)
        self.beat = nn.Linear(16, shared_dim)
        self.cap = nn.Linear(16, caption_dim)
        self.nq, self.nc = n_queries_contrast, n_queries_caption
        self.shared_dim, self.caption_dim = shared_dim, caption_dim

    def forward(self, x: torch.Tensor) -> TowerOut:
        t = self.conv(x).transpose(1, 2)  # (B, N, 16)
        beats = self.beat(nn.functional.adaptive_avg_pool1d(t.transpose(1, 2), self.nq).transpose(1, 2))
        cap = self.cap(nn.functional.adaptive_avg_pool1d(t.transpose(1, 2), self.nc).transpose(1, 2))
        return TowerOut(pooled=beats.mean(1), beats=beats, caption_tokens=cap, tokens=t)


class WordTokenizer:
    """Whitespace tokenizer with BERT-like special ids; unknown words map to [UNK]."""

    SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

    def __init__(self, words: list[str]):
        self.vocab = self.SPECIAL + sorted(set(words) - set(self.SPECIAL))
        self.ids = {w: i for i, w in enumerate(self.vocab)}
        self.pad_token_id, self.unk_token_id, self.cls_token_id, self.sep_token_id, self.mask_token_id = 0, 1, 2, 3, 4

    def __len__(self) -> int:
        return len(self.vocab)

    def words(self, text: str) -> list[str]:
        return re.findall(r"[a-z0-9]+|\.", text.lower())

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        toks = [self.vocab[int(i)] for i in ids]
        if skip_special_tokens:
            toks = [t for t in toks if t not in self.SPECIAL]
        return " ".join(toks)


VOCAB = "sinus rhythm atrial fibrillation normal ecg left bundle branch block st elevation tachycardia bradycardia with . abnormal".split()


class ToyPretrain(PretrainModule):
    """Linear ECG tower + bag-of-words text tower trained with the CLIP loss (resume/DDP/val tests)."""

    method_name = "toy"

    def __init__(self, dim: int = 8, length: int = 100, **common):
        super().__init__(length=length, **common)
        self.save_hyperparameters()
        self.ecg = nn.Linear(12 * length, dim)
        self.tok = WordTokenizer(VOCAB)
        self.text = nn.EmbeddingBag(len(self.tok), dim)
        self.logit_scale = LogitScale()

    def embed_ecg(self, x):
        return self.ecg(x.flatten(1))

    def embed_text(self, texts):
        ids = [torch.tensor([self.tok.ids.get(w, 1) for w in self.tok.words(t)] or [1]) for t in texts]
        offsets = torch.tensor([0] + [len(i) for i in ids[:-1]]).cumsum(0)
        return self.text(torch.cat(ids), offsets)

    def compute_losses(self, batch):
        loss = clip_loss(self.embed_ecg(batch["ecg"]), self.embed_text(batch["report"]), self.logit_scale())
        return {"loss": loss, "clip": loss.detach()}


REPORTS = [
    "sinus rhythm. normal ecg.",
    "atrial fibrillation.",
    "sinus bradycardia. left bundle branch block.",
    "sinus tachycardia. st elevation.",
]


class ToyData(Dataset):
    def __init__(self, n: int, length: int = 100, seed: int = 0, labels: bool = False):
        g = torch.Generator().manual_seed(seed)
        self.cls = torch.randint(0, len(REPORTS), (n,), generator=g)
        self.x = torch.randn(n, 12, length, generator=g) * 0.1 + self.cls[:, None, None].float() / 4
        self.labels = labels

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        item = {"ecg": self.x[i], "report": REPORTS[int(self.cls[i])], "index": i}
        if self.labels:
            item["labels"] = nn.functional.one_hot(self.cls[i], len(REPORTS)).float()
        return item


class ToyDataModule(L.LightningDataModule):
    def __init__(self, n: int = 32, batch_size: int = 4, with_val: bool = True):
        super().__init__()
        self.n, self.bs, self.with_val = n, batch_size, with_val

    def train_dataloader(self):
        return item_loader(ToyData(self.n), self.bs, seed=0)

    def val_dataloader(self):
        return [DataLoader(ToyData(16, seed=1, labels=True), batch_size=8)] if self.with_val else []


PROMPTS = {
    "toy": {
        "normal": ["normal ecg"],
        "af": ["atrial fibrillation"],
        "lbbb": ["left bundle branch block"],
        "st": ["st elevation"],
    }
}


def tiny_melp(bert_dir, **kw):
    """The small MELP the MELP and perf tests share (tiny tower, 2-layer decoder, the offline BERT in ``bert_dir``)."""
    from ecg_text_align.melp import MELP

    torch.manual_seed(0)
    return MELP(
        ecg_tower={
            "_target_": "ecg_encoders.ecg.melp_tower.build_melp_tower",
            "preset": "tiny",
            "pooler": {"shared_dim": 16, "caption_dim": 32, "n_queries_caption": 8, "n_queries_contrast": 5},
        },
        text_encoder={
            "_target_": "ecg_encoders.text.presets.build_text_preset",
            "name": "offline_default",
            "path": str(bert_dir),
            "freeze_layers": 1,
            "max_length": 32,
        },
        shared_dim=16,
        decoder_layers=2,
        decoder_heads=2,
        max_sentences=4,
        **kw,
    )
