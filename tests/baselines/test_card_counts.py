"""Issue 16: every parameter ``encode_ecg`` runs is counted in ``card.n_parameters`` (the scored encoder).

Forward hooks record the modules that run during ``encode_ecg``; their parameters must all belong to the
method's ``scored_modules()``. (The converse is not exact: ``nn.MultiheadAttention`` uses ``out_proj``'s
parameters without calling it, so a hook never sees it run.)"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ecg_text_align.module import count_parameters


def _ran_parameters(model: nn.Module, x: torch.Tensor) -> dict[int, str]:
    ran: set[int] = set()
    hooks = [m.register_forward_hook(lambda mod, i, o: ran.add(id(mod))) for m in model.modules()]
    try:
        model.encode_ecg(x)
    finally:
        for h in hooks:
            h.remove()
    names = {id(p): n for n, p in model.named_parameters()}
    return {id(p): names[id(p)] for m in model.modules() if id(m) in ran for p in m.parameters(recurse=False)}


def _scored_ids(model) -> set[int]:
    return {id(p) for m in model.scored_modules() for p in ([m] if isinstance(m, nn.Parameter) else m.parameters())}


def _text(path, **kw):
    return {
        "_target_": "ecg_encoders.text.presets.build_text_preset",
        "name": "offline_default",
        "path": str(path),
        "freeze_layers": 1,
        **kw,
    }


def _models(name: str, bert):
    if name.startswith("melp"):
        from ecg_text_align.melp import MELP

        kw = {"beat_source": "rpeaks"} if name == "melp_rpeaks" else {}
        return MELP(text_encoder=_text(bert, max_length=32), shared_dim=32, decoder_layers=1, decoder_heads=2, **kw)
    if name == "merl":
        from baselines.merl.model import MERL

        return MERL(text_encoder=_text(bert, causal=False, add_trailing_cls=False, pooling="pooler"), proj_hidden=8)
    if name == "esi":
        from baselines.esi.model import ESI

        return ESI(
            text_encoder=_text(bert, causal=True, add_trailing_cls=True, pooling="last"),
            decoder_layers=1,
            decoder_heads=2,
        )
    from baselines.heartlang.model import HeartLangMSM

    return HeartLangMSM()


@pytest.mark.parametrize("name", ["melp", "melp_rpeaks", "merl", "esi", "heartlang"])
def test_encode_ecg_runs_only_scored_parameters(name: str, tiny_bert_dir) -> None:
    torch.manual_seed(0)
    model = _models(name, tiny_bert_dir)
    x = torch.randn(2, 12, 1000 if name == "heartlang" else 5000)
    ran = _ran_parameters(model, x)
    outside = {n for i, n in ran.items() if i not in _scored_ids(model)}
    if name.startswith("melp"):  # the tower computes caption tokens in the same pass; encode_ecg drops them
        outside = {n for n in outside if not n.startswith(("ecg_tower.attn_pool_caption.", "ecg_tower.ln_caption."))}
    assert not outside
    card = model.card
    assert card.n_parameters == count_parameters(*model.scored_modules()) < card.n_parameters_training
    assert card.n_parameters_training == sum(p.numel() for p in model.parameters())
