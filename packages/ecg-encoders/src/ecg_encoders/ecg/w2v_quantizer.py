"""Gumbel-softmax product quantiser of wav2vec 2.0 (Baevski et al. 2020, §2 "Quantization module").

G codebooks (groups) of V entries each; a linear layer gives G×V logits per step, a hard Gumbel-softmax
picks one entry per group (straight-through), the chosen entries are concatenated. Same layout as
fairseq ``GumbelVectorQuantizer`` with ``combine_groups=False`` and ``weight_proj_depth=1``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class QuantizerOutput:
    x: torch.Tensor  # (B, N, vq_dim) quantised vectors
    targets: torch.Tensor  # (B, N, G) chosen entry per group
    prob_perplexity: torch.Tensor  # perplexity of the batch-averaged softmax, summed over groups
    code_perplexity: torch.Tensor  # perplexity of the hard choices, summed over groups
    num_vars: int  # G * V, the maximum perplexity
    temp: float


class GumbelVectorQuantizer(nn.Module):
    def __init__(
        self,
        dim: int,
        num_vars: int,
        groups: int,
        vq_dim: int,
        temp: tuple[float, float, float] = (2.0, 0.5, 0.999995),
    ) -> None:
        super().__init__()
        if vq_dim % groups:
            raise ValueError(f"vq_dim {vq_dim} must be divisible by groups {groups}")
        self.groups = groups
        self.num_vars = num_vars
        self.vars = nn.Parameter(torch.empty(1, groups * num_vars, vq_dim // groups).uniform_())
        self.weight_proj = nn.Linear(dim, groups * num_vars)
        nn.init.normal_(self.weight_proj.weight, mean=0.0, std=1.0)
        nn.init.zeros_(self.weight_proj.bias)
        self.max_temp, self.min_temp, self.temp_decay = temp
        self.curr_temp = self.max_temp

    def set_num_updates(self, num_updates: int) -> None:
        """Temperature anneals geometrically from max to min (wav2vec 2.0 §4.2: 2 -> 0.5, ×0.999995/step)."""
        self.curr_temp = max(self.max_temp * self.temp_decay**num_updates, self.min_temp)

    def forward(self, x: torch.Tensor) -> QuantizerOutput:
        b, n, c = x.shape
        logits = self.weight_proj(x.reshape(-1, c)).view(b * n, self.groups, self.num_vars)
        k = logits.argmax(dim=-1)
        hard = F.one_hot(k, self.num_vars).to(logits.dtype)
        hard_probs = hard.float().mean(dim=0)
        code_ppl = torch.exp(-(hard_probs * torch.log(hard_probs + 1e-7)).sum(-1)).sum()
        avg_probs = logits.float().softmax(dim=-1).mean(dim=0)
        prob_ppl = torch.exp(-(avg_probs * torch.log(avg_probs + 1e-7)).sum(-1)).sum()
        if self.training:
            onehot = F.gumbel_softmax(logits.float(), tau=self.curr_temp, hard=True).to(x.dtype)
        else:
            onehot = hard.to(x.dtype)
        codebooks = self.vars.view(self.groups, self.num_vars, -1)  # (G, V, vq_dim/G)
        q = torch.einsum("mgv,gvd->mgd", onehot, codebooks).reshape(b, n, -1)
        return QuantizerOutput(
            x=q,
            targets=onehot.argmax(dim=-1).view(b, n, self.groups).detach(),
            prob_perplexity=prob_ppl,
            code_perplexity=code_ppl,
            num_vars=self.groups * self.num_vars,
            temp=self.curr_temp,
        )
