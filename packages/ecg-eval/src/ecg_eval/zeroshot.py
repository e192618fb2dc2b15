"""Zero-shot scores: cosine similarity between ECG features and class text embeddings.

A class embedding is the mean of its L2-normalised prompt embeddings, normalised again; the score of a record
for a class is the cosine similarity. Scores stay per class (no softmax across classes): the tasks are
multi-label, and AUROC is rank-based per class, so a softmax would only couple the classes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch


class ZeroShotNotApplicable(TypeError):
    """The encoder has no text tower (``encode_text``), so it has no zero-shot scores."""


def _l2(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norm, 1e-12)


def _to_numpy(t: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(t, torch.Tensor):
        return t.detach().float().cpu().numpy()
    return np.asarray(t, dtype=np.float32)


def class_embeddings(
    embed_text: Callable[[list[str]], torch.Tensor | np.ndarray] | None,
    prompts: Mapping[str, Sequence[str]],
    classes: Sequence[str] | None = None,
) -> np.ndarray:
    """(C, d) normalised class embeddings, rows in ``classes`` order (default: the order of ``prompts``).

    The one implementation, for the harness (``embed_text`` = an encoder's ``encode_text``) and for validation
    during pretraining (``ecg_text_align.module``: the module's ``embed_text``). All prompts go through one
    ``embed_text`` call; each is L2-normalised (float64), averaged per class and normalised again."""
    if not callable(embed_text):
        raise ZeroShotNotApplicable("the encoder has no encode_text: zero-shot is not applicable")
    classes = list(prompts) if classes is None else list(classes)
    texts: list[str] = []
    owner: list[int] = []
    for j, name in enumerate(classes):
        if not prompts[name]:
            raise ValueError(f"zero-shot class {name!r} has no prompt")
        for text in prompts[name]:
            texts.append(text)
            owner.append(j)
    with torch.no_grad():
        emb = _l2(_to_numpy(embed_text(texts)).astype(np.float64))
    if emb.shape[0] != len(texts):
        raise ValueError(f"encode_text returned {emb.shape[0]} rows for {len(texts)} prompts")
    owner_arr = np.asarray(owner)
    means = np.stack([emb[owner_arr == j].mean(axis=0) for j in range(len(classes))])
    return _l2(means)


def zero_shot_scores(features: np.ndarray, class_emb: np.ndarray) -> np.ndarray:
    """(N, d) ECG features x (C, d) class embeddings -> (N, C) cosine similarities."""
    if features.shape[1] != class_emb.shape[1]:
        raise ValueError(
            f"ECG features have dimension {features.shape[1]} but text embeddings {class_emb.shape[1]}: "
            "encode_ecg and encode_text must map into the same space for zero-shot"
        )
    return _l2(np.asarray(features, dtype=np.float64)) @ class_emb.T
