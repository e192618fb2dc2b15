"""ESI: ConvNeXt-V2-1D signal encoder, a BERT text tower run **causally**, CoCa-style contrastive +
captioning loss on knowledge-enriched captions.

Source: comp-well-org/ESI ``model/esi.py`` (``ESI``: ``img_token_head`` Linear(signal_dim, dim) + bias-free
LayerNorm -> one ECG embedding; ``img_to_latents`` / ``text_to_latents`` bias-free linears, l2-normalised;
learnable temperature init 1.0 used as ``exp(t)``; 6 multimodal layers of causal self-attention +
cross-attention to the ECG embedding; loss = caption + contrastive, both weight 1), ``main.py`` (dim 768,
BioLinkBERT-base, lr 5e-5), ``train.py`` (AdamW, linear warmup over 10% of the steps).

Difference kept on purpose (docs/baselines/esi.md): ESI runs the BERT bidirectionally under the captioning
loss, so the state that predicts token i+1 has already read token i+1. Here the text tower is causal
(``HFTextEncoder(causal=True)``) and its report embedding is a trailing [CLS], as MELP does.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from baselines.esi.knowledge import KnowledgeBase
from ecg_text_align.coca_decoder import CoCaDecoder
from ecg_text_align.components import build
from ecg_text_align.decoder import CaptionDecoder
from ecg_text_align.losses import LogitScale, clip_loss, decoder_caption_loss
from ecg_text_align.module import PretrainModule

log = logging.getLogger(__name__)

DEFAULT_ECG = {"_target_": "ecg_encoders.ecg.convnextv2_1d.build_convnextv2_1d", "preset": "tiny"}
# causal BioLinkBERT with a trailing [CLS] (ours: ESI ran it bidirectionally, see module docstring)
DEFAULT_TEXT = {
    "_target_": "ecg_encoders.text.presets.build_text_preset",
    "name": "biolinkbert",
    "causal": True,
    "add_trailing_cls": True,
    "pooling": "last",
    "max_length": 512,
}


def demographics_sentence(age: int | None, sex: str | None) -> str:
    """The caption's opening sentence (our wording; ESI puts anchor age and sex first, process_mimic.py:12-13)."""
    if age is None or sex not in ("M", "F"):
        return ""
    return f"Patient: {age}-year-old {'male' if sex == 'M' else 'female'}. "


class ESI(PretrainModule):
    method_name = "esi"
    scored_module_names = ("ecg", "img_token_head", "img_norm", "img_to_latents")

    def __init__(
        self,
        ecg_encoder: Mapping[str, Any] = DEFAULT_ECG,
        text_encoder: Mapping[str, Any] = DEFAULT_TEXT,
        dim_latents: int | None = None,  # esi.py: default(dim_latents, dim)
        caption_weight: float = 1.0,  # main.py caption_loss_weight=1.
        contrastive_weight: float = 1.0,  # main.py contrastive_loss_weight=1.
        decoder_layers: int = 6,  # main.py multimodal_depth=6
        decoder_heads: int = 8,  # main.py heads=8 (dim_head 64)
        init_temperature: float = math.exp(-1.0),  # esi.py temperature=1. used as sim * exp(1.)
        caption_context: str = "pooled",  # "pooled" = ESI (one ECG embedding); "tokens" = ConvNeXt's last-stage map
        decoder_block: str = "coca",  # "coca" = ESI's esi.py:144-337,401-413 (parallel + multi-query, rotary,
        # SwiGLU, no biases); "open_clip" = MELP's CaptionDecoder blocks
        knowledge_file: str | None = None,  # None = baselines/esi/knowledge.json
        enrich_captions: bool = True,
        gather_negatives: bool = False,  # esi.py:415,481: is_distributed is read at construction, before
        # the process group exists, so ESI's gather never runs: per-GPU
        max_logit_scale: float = float("inf"),  # esi.py:386,489: exp(temperature), never clamped
        augment_jitter: float = 0.003,  # utils/ecg_loader.py:54 Jitter(0.003), training only
        augment_scale: float = 0.003,  # utils/ecg_loader.py:55 Scaling(0.003), one factor per lead
        caption_demographics: bool = True,  # utils/data/process_mimic.py:12-13,74-78: age and sex open each caption
        decay_1d_params: bool = True,  # main.py:59: AdamW(esi.parameters()), decay on every tensor
        input_preset: str = "esi",  # the input this model reads (ecg_data.preprocess.PRESETS)
        **common: Any,
    ):
        # the optimiser values (lr, betas, weight_decay, ...) are the stage's, from the method config
        # (configs/method/esi.yaml, experiment=esi_paper, each with its source); PretrainModule's defaults otherwise
        common.setdefault("model_preset", str(dict(ecg_encoder).get("preset", "custom")))  # the card says which size
        super().__init__(decay_1d_params=decay_1d_params, input_preset=input_preset, **common)
        self.save_hyperparameters()
        if caption_context not in ("pooled", "tokens"):
            raise ValueError(f"caption_context must be 'pooled' or 'tokens', got {caption_context!r}")
        self.ecg = build(dict(ecg_encoder))
        self.text = build(dict(text_encoder))
        if not getattr(self.text, "causal", False):
            raise ValueError("ESI here needs a causal text tower (text_encoder.causal=true); see docs/baselines/esi.md")
        dim = int(self.text.width)  # ESI: dim = text width (768)
        latents = dim_latents or dim
        self.img_token_head = nn.Linear(int(self.ecg.pooled_dim), dim)
        self.img_norm = nn.LayerNorm(dim, bias=False)  # esi.py LayerNorm: gamma only, beta fixed at 0
        self.img_to_latents = nn.Linear(dim, latents, bias=False)
        self.text_to_latents = nn.Linear(dim, latents, bias=False)
        tok = self.text.tokenizer
        self.pad_id, self.cls_id = tok.pad_token_id, tok.cls_token_id
        if decoder_block not in ("coca", "open_clip"):
            raise ValueError(f"decoder_block must be 'coca' or 'open_clip', got {decoder_block!r}")
        decoder_cls = CoCaDecoder if decoder_block == "coca" else CaptionDecoder
        self.decoder = decoder_cls(
            vocab_size=len(tok),
            width=dim,
            layers=decoder_layers,
            heads=decoder_heads,
            context_length=int(getattr(self.text, "max_length", 512)),
            ecg_dim=dim,
        )
        self.logit_scale = LogitScale(init_temperature=init_temperature, max_scale=max_logit_scale)
        self._kb: KnowledgeBase | None = None
        #: (age, sex) per training cache row (PretrainDataModule.demographics), set at fit start
        self._demographics: list[tuple[int | None, str | None]] | None = None

    # ----- knowledge-enriched captions ----------------------------------------------------------
    @property
    def knowledge(self) -> KnowledgeBase:
        """Loaded on first use (training only), so a checkpoint loads without the knowledge file."""
        if self._kb is None:
            self._kb = KnowledgeBase.from_file(self.hparams.knowledge_file)
        return self._kb

    def captions(
        self, reports: list[str], demographics: Sequence[tuple[int | None, str | None]] | None = None
    ) -> list[str]:
        """ESI's captions: the patient's age and sex (where known), the findings, their waveform descriptions."""
        out = [self.knowledge.enrich(r) for r in reports] if self.hparams.enrich_captions else list(reports)
        if demographics is not None and self.hparams.caption_demographics:
            out = [f"{demographics_sentence(*d)}{c}" for d, c in zip(demographics, out)]
        return out

    def on_fit_start(self) -> None:
        super().on_fit_start()
        self._demographics = None
        demographics = self.data_facts.demographics  # handed over by fit (ecg_text_align.data.DataFacts)
        if self.hparams.caption_demographics and demographics is not None:
            self._demographics = demographics()
            known = sum(a is not None for a, _ in self._demographics)
            if known < len(self._demographics):
                log.warning("ESI captions: %d of %d training records have no age/sex (MIMIC-IV-ECG needs the MIMIC-IV "
                            "hosp patients.csv in its root, docs/datasets.md); their captions start with the findings",
                            len(self._demographics) - known, len(self._demographics))  # fmt: skip

    def batch_demographics(self, batch: Mapping[str, Any]) -> list[tuple[int | None, str | None]] | None:
        if self._demographics is None or "index" not in batch:
            return None
        return [self._demographics[i] for i in torch.as_tensor(batch["index"]).reshape(-1).tolist()]

    def on_train_epoch_end(self) -> None:
        if self._kb is not None:
            self._kb.log_summary()
            self.log("train/knowledge_coverage", float(self._kb.coverage()), sync_dist=False)

    # ----- towers -------------------------------------------------------------------------------
    def _ecg(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """-> ECG embedding (B, dim) and the caption decoder's context (B, N, dim)."""
        out = self.ecg(x)
        emb = self.img_norm(self.img_token_head(out.pooled))
        if self.hparams.caption_context == "pooled":
            # ESI repeats the one embedding over the text length; attention over identical keys = one token
            return emb, emb[:, None, :]
        return emb, self.img_norm(self.img_token_head(out.tokens))

    def _tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        return {k: v.to(self.device) for k, v in self.text.tokenize(list(texts)).items()}

    def embed_ecg(self, x: torch.Tensor) -> torch.Tensor:
        return self.img_to_latents(self._ecg(x)[0])

    def embed_text(self, texts: list[str]) -> torch.Tensor:
        t = self._tokenize(texts)
        return self.text_to_latents(self.text(t["input_ids"], t["attention_mask"]).pooled)

    def augment_raw(self, batch: Mapping[str, Any], x: torch.Tensor) -> torch.Tensor:
        """ESI's training augmentation on the signal *before* its per-record z-score, as the original
        (utils/ecg_loader.py:52-57,80-85): jitter N(0, σ_j) on every sample, then one factor N(1, σ_s) per lead.

        ``PretrainModule.transform_batch`` applies it to each training batch on the device, before the preset's deferred
        normalisation (the ``esi`` preset stores millivolts and z-scores per batch), so the noise is in
        millivolts, exactly the original's units. Seeded by (seed, rank, step, the batch's cache rows): a
        resumed run draws the same noise, and the micro-batches of one step draw different noise."""
        sj, ss = float(self.hparams.augment_jitter), float(self.hparams.augment_scale)
        if sj <= 0 and ss <= 0:
            return x
        rows = batch.get("index")
        rows_key = tuple(torch.as_tensor(rows).reshape(-1)[:8].tolist()) if rows is not None else ()
        seed = hash((self.seed, 3, self.global_rank, int(self.global_step), rows_key)) & 0x7FFFFFFF
        g = torch.Generator(device=x.device).manual_seed(seed)
        noise = torch.randn(x.shape, generator=g, device=x.device, dtype=x.dtype) * sj
        factor = 1.0 + torch.randn((x.shape[0], x.shape[1], 1), generator=g, device=x.device, dtype=x.dtype) * ss
        return (x + noise) * factor

    def contrastive_chance(self, batch_size: int) -> dict[str, float]:
        """One averaged two-direction loss; negatives from the rank's batch unless ``gather_negatives``."""
        return {"contrastive": math.log(self.global_batch(batch_size, bool(self.hparams.gather_negatives)))}

    def compute_losses(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        emb, context = self._ecg(batch["ecg"])  # augmented before normalisation (transform_batch: augment_raw)
        t = self._tokenize(self.captions(list(batch["report"]), self.batch_demographics(batch)))
        ids = t["input_ids"]
        text = self.text(ids, t["attention_mask"])
        losses: dict[str, torch.Tensor] = {}
        losses["contrastive"] = clip_loss(
            self.img_to_latents(emb),
            self.text_to_latents(text.pooled),
            self.logit_scale(),
            gather=bool(self.hparams.gather_negatives),
        )
        # teacher forcing on the causal states: position i predicts token i+1; pads and the trailing
        # [CLS] (the pooling slot) are ignored
        labels = ids[:, 1:].clone()
        if getattr(self.text, "add_trailing_cls", False):
            labels[labels == self.cls_id] = self.pad_id
        losses["caption"] = decoder_caption_loss(
            self.decoder, context, text.tokens[:, :-1], labels, self.pad_id, real_positions=self.caption_real_positions
        )
        losses["loss"] = (
            self.hparams.contrastive_weight * losses["contrastive"] + self.hparams.caption_weight * losses["caption"]
        )
        losses["logit_scale"] = self.logit_scale().detach()
        return losses
