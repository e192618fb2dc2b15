"""MELP (Wang et al., 2025, "From Token to Rhythm: A Multi-Scale Approach for ECG-Language Pretraining").

Stage 2 (ECG-text) model: ECG tower (wav2vec2 + two attentional poolers) and a causal BERT text tower,
trained with 1.0·contrastive(rhythm, report) + 2.0·caption + 0.2·local(beats, sentences)
(loss weights from the run command in HKU-MedAI/MELP scripts/pretrain/main_pretrain.py).

- token scale: 128 caption-pooler queries read by the caption decoder (``CaptionDecoder``);
- beat scale: n_q contrast-pooler queries (beat embeddings, width 256), or real R-peak beats (option);
- rhythm scale: mean of the beats, L2-normalised, contrasted with the trailing-[CLS] text embedding.

Sub-modules are built from plain specs (see ``components``) so ``from_checkpoint`` rebuilds the model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ecg_data.integrity import safe_torch_load
from ecg_encoders.ecg.beats import rpeak_beat_tokens
from ecg_text_align.components import build
from ecg_text_align.decoder import CaptionDecoder
from ecg_text_align.losses import LogitScale, clip_loss, decoder_caption_loss, local_alignment_loss
from ecg_text_align.module import PretrainModule

DEFAULT_ECG = {"_target_": "ecg_encoders.ecg.melp_tower.build_melp_tower", "preset": "tiny"}
DEFAULT_TEXT = {"_target_": "ecg_encoders.text.presets.build_text_preset", "name": "offline_default"}


class MELP(PretrainModule):
    method_name = "melp"
    init_only_hparams = ("ecg_tower_ckpt",)

    def __init__(
        self,
        ecg_tower: Mapping[str, Any] = DEFAULT_ECG,
        text_encoder: Mapping[str, Any] = DEFAULT_TEXT,
        shared_dim: int = 256,
        clip_weight: float = 1.0,
        caption_weight: float = 2.0,
        local_weight: float = 0.2,
        decoder_layers: int = 6,
        decoder_heads: int = 8,
        max_sentences: int = 16,
        beat_source: str = "queries",
        max_rpeak_beats: int = 24,
        ecg_tower_ckpt: str | None = None,
        **common: Any,
    ):
        # the optimiser values (lr, betas, weight_decay, ...) are the stage's, from the method config
        # (configs/method/melp.yaml / melp_paper.yaml, each with its source); PretrainModule's defaults otherwise
        super().__init__(**common)
        self.save_hyperparameters()
        if beat_source not in ("queries", "rpeaks"):
            raise ValueError(f"beat_source must be 'queries' or 'rpeaks', got {beat_source!r}")
        self.ecg_tower = build(dict(ecg_tower))
        if callable(getattr(getattr(self.ecg_tower, "encoder", None), "drop_mask_emb", None)):
            self.ecg_tower.encoder.drop_mask_emb()  # stage 2 never masks; DDP needs every parameter used
        if ecg_tower_ckpt:
            load_ecg_tower(self.ecg_tower, ecg_tower_ckpt)
        self.text = build(dict(text_encoder))
        width = int(self.text.width)
        shared_in = int(getattr(self.ecg_tower, "shared_dim", shared_dim))
        if shared_in != shared_dim:
            raise ValueError(f"ECG tower beat width {shared_in} != shared_dim {shared_dim}")
        # MERL/MELP proj_t: Linear(768, 256) -> GELU -> Linear(256, 256) (merl_model.py, proj_hidden=256)
        self.proj_text = nn.Sequential(nn.Linear(width, shared_dim), nn.GELU(), nn.Linear(shared_dim, shared_dim))
        self.proj_sent = nn.Linear(width, shared_dim)  # melp_model.py sent_proj
        if beat_source == "rpeaks":
            self.proj_rpeak_beat = nn.Linear(int(self.ecg_tower.encoder.width), shared_dim)
            # beats come from R-peak segments: the query pooler would take no part in the loss (DDP)
            self.ecg_tower.drop_contrast_pooler()
        tok = self.text.tokenizer
        self.pad_id, self.sep_id, self.cls_id = tok.pad_token_id, tok.sep_token_id, tok.cls_token_id
        self.start_id = getattr(self.text, "start_id", tok.cls_token_id)
        self.decoder = CaptionDecoder(
            vocab_size=len(tok),
            width=width,
            layers=decoder_layers,
            heads=decoder_heads,
            context_length=int(getattr(self.text, "max_length", 128)),
            ecg_dim=int(getattr(self.ecg_tower, "caption_dim", width)),
        )
        self.logit_scale = LogitScale()
        self.weights = {"clip": clip_weight, "caption": caption_weight, "local": local_weight}

    # ----- towers -------------------------------------------------------------------------------
    def _ecg(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """-> rhythm (B, 256) unnormalised, beats (B, Q, 256), beat mask or None, caption tokens (B, 128, dc)."""
        out = self.ecg_tower(x)
        if self.hparams.beat_source == "rpeaks":
            fs = getattr(self.ecg_tower.encoder, "fs", self.input_spec.fs)
            beats, mask = rpeak_beat_tokens(x, out.tokens, fs, self.hparams.max_rpeak_beats)
            beats = self.proj_rpeak_beat(beats)
            m = mask[..., None].to(beats.dtype)
            rhythm = (beats * m).sum(1) / m.sum(1).clamp(min=1)
            return rhythm, beats, mask, out.caption_tokens
        return out.beats.mean(dim=1), out.beats, None, out.caption_tokens

    def _tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        return {k: v.to(self.device) for k, v in self.text.tokenize(list(texts)).items()}

    def scored_modules(self) -> list[nn.Module | nn.Parameter]:
        """What ``embed_ecg`` (the rhythm embedding) runs: the ECG encoder and the contrast pooler, or the R-peak
        beat projection; not the caption pooler, which only feeds the decoder."""
        t = self.ecg_tower
        parts = [
            t.encoder,
            getattr(t, "attn_pool_contrast", None),
            getattr(t, "ln_contrast", None),
            getattr(t, "proj_contrast", None),
            getattr(self, "proj_rpeak_beat", None),
        ]
        return [m for m in parts if m is not None]

    def embed_ecg(self, x: torch.Tensor) -> torch.Tensor:
        return self._ecg(x)[0]

    @torch.no_grad()
    def encode_ecg_probe(self, x: torch.Tensor) -> torch.Tensor:
        """MELP's linear-probe feature, ``ext_ecg_emb`` (ecgfm_model.py:188-206 via melp_model.py:464-469,
        used by ssl_finetuner.py:109): contrast pooler -> LayerNorm -> mean over queries, *without*
        ``proj_contrast``. ``encode_ecg`` (zero-shot space, rhythm embedding) includes the projection. The
        harness's ``linear_probe_paper`` probes this feature; its ``linear_probe`` probes ``encode_ecg``."""
        was = self.training
        self.eval()
        try:
            tokens = self.ecg_tower.encoder(x.to(self.device, torch.float32)).tokens
            return self.ecg_tower.pool(tokens, project=False).pooled
        finally:
            self.train(was)

    def embed_text(self, texts: list[str]) -> torch.Tensor:
        t = self._tokenize(texts)
        return self.proj_text(self.text(t["input_ids"], t["attention_mask"]).pooled)

    # ----- losses -------------------------------------------------------------------------------
    def compute_losses(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        rhythm, beats, beat_mask, cap_tokens = self._ecg(batch["ecg"])
        t = self._tokenize(batch["report"])
        ids = t["input_ids"]
        text = self.text(ids, t["attention_mask"])
        losses: dict[str, torch.Tensor] = {}
        losses["clip"] = clip_loss(rhythm, self.proj_text(text.pooled), self.logit_scale())
        # teacher forcing: the state at position i predicts token i+1; pads (and the trailing [CLS],
        # which is the pooling slot, not text) are ignored
        labels = ids[:, 1:].clone()
        if getattr(self.text, "add_trailing_cls", False):
            labels[labels == self.cls_id] = self.pad_id
        losses["caption"] = decoder_caption_loss(
            self.decoder,
            cap_tokens,
            text.tokens[:, :-1],
            labels,
            self.pad_id,
            real_positions=self.caption_real_positions,
        )
        sents, smask = self.text.sentence_embeddings(text.tokens, t["sentence_ids"], self.hparams.max_sentences)
        losses["local"] = local_alignment_loss(beats, self.proj_sent(sents), smask, beat_mask=beat_mask)
        losses["loss"] = sum(self.weights[k] * losses[k] for k in ("clip", "caption", "local"))
        losses["logit_scale"] = self.logit_scale().detach()
        return losses

    def contrastive_chance(self, batch_size: int) -> dict[str, float]:
        """``clip`` averages two directions over the global batch (negatives gathered): chance ln B."""
        return {"clip": math.log(self.global_batch(batch_size))}

    # ----- report generation ----------------------------------------------------------------------
    @torch.no_grad()
    def generate_report(
        self, x: torch.Tensor, beam_size: int = 3, max_len: int = 40, length_penalty: float = 1.0
    ) -> list[str]:
        """Beam-search report for each ECG (B, 12, T): the caption decoder reads the ECG tokens and the
        causal text tower's states of the prefix; stops at [SEP]. Scores are log-probs / length**penalty."""
        was = self.training
        self.eval()
        try:
            x = x.to(self.device, torch.float32)
            cap_tokens = self._ecg(x)[3]
            banned = {self.pad_id, self.cls_id, self.start_id}
            for name in ("unk_token_id", "mask_token_id"):
                tid = getattr(self.text.tokenizer, name, None)
                if tid is not None:
                    banned.add(tid)
            banned_t = torch.tensor(sorted(banned), device=self.device)
            limit = min(max_len, self.decoder.context_length - 1)
            return self._beam_search(cap_tokens, beam_size, limit, length_penalty, banned_t)
        finally:
            self.train(was)

    def _beam_search(self, ecg: torch.Tensor, k: int, max_len: int, lp: float, banned: torch.Tensor) -> list[str]:
        """Beam search for all records at once: one text-tower + decoder pass per step for the B·k beams."""
        b, dev = ecg.shape[0], self.device
        seqs = torch.full((b * k, 1), self.start_id, dtype=torch.long, device=dev)
        scores = torch.full((b, k), float("-inf"), device=dev)
        scores[:, 0] = 0.0  # one live beam per record at the start
        ecg_k = ecg.repeat_interleave(k, dim=0)
        finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(b)]
        done = [False] * b
        for step in range(max_len):
            states = self.text(seqs, torch.ones_like(seqs)).tokens
            logp = self.decoder(ecg_k, states)[:, -1].float().log_softmax(-1)
            logp[:, banned] = float("-inf")
            if step == 0:
                logp[:, self.sep_id] = float("-inf")  # no empty report
            v = logp.shape[-1]
            cand = (scores.view(-1, 1) + logp).view(b, k * v)
            top_s, top_i = cand.topk(2 * k, dim=1)
            rows, new_scores = [], torch.full((b, k), float("-inf"), device=dev)
            for r in range(b):
                kept: list[tuple[float, torch.Tensor]] = []
                for sc, idx in zip(top_s[r].tolist(), top_i[r].tolist()):
                    if sc == float("-inf") or done[r]:
                        break
                    parent, tok = r * k + idx // v, idx % v
                    if tok == self.sep_id:  # a finished report; score normalised by its length (incl. [SEP])
                        finished[r].append((sc / seqs.shape[1] ** lp, seqs[parent, 1:].tolist()))
                    elif len(kept) < k:
                        kept.append((sc, torch.cat([seqs[parent], seqs.new_tensor([tok])])))
                    if len(kept) == k:
                        break
                if len(finished[r]) >= k:
                    done[r] = True
                while len(kept) < k:  # dead slots keep a -inf score
                    kept.append((float("-inf"), torch.cat([seqs[r * k], seqs.new_tensor([self.pad_id])])))
                for j, (sc, seq) in enumerate(kept):
                    new_scores[r, j] = sc
                    rows.append(seq)
            seqs, scores = torch.stack(rows), new_scores
            if all(done):
                break
        out = []
        for r in range(b):
            pool = finished[r] or [
                (float(scores[r, j]) / seqs.shape[1] ** lp, seqs[r * k + j, 1:].tolist())
                for j in range(k)
                if scores[r, j] > float("-inf")
            ]
            best = max(pool, key=lambda c: c[0])[1]
            out.append(self.text.tokenizer.decode(best, skip_special_tokens=True).strip())
        return out


def load_ecg_tower(tower: nn.Module, ckpt_path: str) -> None:
    """Initialise the ECG tower from a stage-0 checkpoint (its ``ecg_tower.*`` or ``encoder.*`` weights).

    As MELP, the contrast pooler is not taken from stage 0 (melp_model.py drops ``attn_pool_contrast``).
    """
    state = safe_torch_load(ckpt_path)  # weights_only: no code runs from the file
    state = state.get("state_dict", state)
    own = tower.state_dict()
    picked = {}
    for k, v in state.items():
        for prefix in ("ecg_tower.", "tower.", ""):
            if k.startswith(prefix) and k[len(prefix) :] in own and "attn_pool_contrast" not in k:
                picked[k[len(prefix) :]] = v
                break
    if not any(k.startswith("encoder.") for k in picked):
        raise ValueError(f"{ckpt_path}: no ECG encoder weights found to initialise the MELP tower")
    tower.load_state_dict(picked, strict=False)


def run_melp(
    data: Mapping[str, Any],
    trainer: Mapping[str, Any],
    run_dir: str,
    zero_shot: Mapping[str, Mapping[str, list[str]]] | None = None,
    **module_kw: Any,
) -> Any:
    """Hydra entry point for stage 2: ``data`` -> ``PretrainDataModule`` kwargs (its zero-shot tasks are the
    keys of ``zero_shot``, class -> prompts); ``trainer`` -> ``fit``; returns the best (or last) checkpoint."""
    from ecg_text_align.data import PretrainDataModule
    from ecg_text_align.train import fit

    module = MELP(zero_shot=dict(zero_shot or {}), **module_kw)
    dm = PretrainDataModule(**{**data, "zero_shot_tasks": {t: list(c) for t, c in (zero_shot or {}).items()}})
    return fit(module, dm, trainer, run_dir)
