"""Binary spherical quantisation (BSQ, Zhao et al. 2024, arXiv 2406.07548) as Kronos uses it.

A ``D = s1_bits + s2_bits`` dimensional vector is L2-normalised and each element becomes ±1/sqrt(D).
The first ``s1_bits`` elements form the coarse token, the rest the fine token; a token id is
``sum_i bit_i * 2**i`` with ``bit_i = element_i >= 0`` (least significant bit first).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["BSQuantizer", "BinarySphericalQuantizer", "bits_to_indices", "indices_to_bits"]


def bits_to_indices(bits: torch.Tensor) -> torch.Tensor:
    """Token ids from signed codes ``(..., n_bits)``, least significant bit first."""
    weights = 2 ** torch.arange(bits.shape[-1], dtype=torch.long, device=bits.device)
    return ((bits >= 0).long() * weights).sum(-1)


def indices_to_bits(ids: torch.Tensor, n_bits: int) -> torch.Tensor:
    """Boolean bits ``(..., n_bits)`` of token ids, least significant bit first."""
    mask = 2 ** torch.arange(n_bits, dtype=torch.long, device=ids.device)
    return (ids.long().unsqueeze(-1) & mask) != 0


class BinarySphericalQuantizer(nn.Module):
    """Sign quantiser with the BSQ commitment and entropy losses (``tokenizer.bsq`` in checkpoints).

    ``basis`` and ``group_basis`` are saved buffers of the published checkpoints (powers of two,
    most significant first); they are kept for state-dict compatibility and to enumerate the
    group codebook used by the codebook-entropy term.
    """

    def __init__(self, embed_dim: int, beta: float, gamma0: float, gamma: float, zeta: float, group_size: int) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.beta, self.gamma0, self.gamma, self.zeta = beta, gamma0, gamma, zeta
        self.group_size = group_size
        self.codebook_entropy: str = "bit"  # "bit" (published behaviour) or "group" (BSQ paper); see entropy_terms
        self.register_buffer("basis", 2 ** torch.arange(embed_dim - 1, -1, -1))
        self.register_buffer("group_basis", 2 ** torch.arange(group_size - 1, -1, -1))
        codes = torch.arange(2**group_size).unsqueeze(-1)
        group_codebook = (
            torch.remainder(torch.div(codes, 2 ** torch.arange(group_size - 1, -1, -1), rounding_mode="floor"), 2) * 2
            - 1
        )
        self.register_buffer("group_codebook", group_codebook.float(), persistent=False)  # (2^g, g)

    @property
    def q_scale(self) -> float:
        return 1.0 / math.sqrt(self.embed_dim)

    def quantize(self, z: torch.Tensor) -> torch.Tensor:
        """±1 per element (+1 where > 0) with a straight-through gradient."""
        zhat = torch.where(z > 0, torch.ones_like(z), -torch.ones_like(z))
        return z + (zhat - z).detach()

    @staticmethod
    def _entropy(probs: torch.Tensor) -> torch.Tensor:
        return -(probs * torch.log(probs + 1e-8)).sum(dim=-1)

    def entropy_terms(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sample entropy (analytic, per bit) and codebook entropy.

        Checkpoint quirk, kept so that training losses match the original: the published code computes
        the codebook entropy from the per-bit probabilities ``[p, 1 - p]`` averaged over positions (its
        grouped softmax is computed and then overwritten). ``codebook_entropy = "group"`` selects the
        grouped form of the BSQ paper instead: softmax over the ``2**group_size`` sign codes of each
        group of bits, averaged over positions.
        """
        p = torch.sigmoid(-4 * z / math.sqrt(self.embed_dim))
        bit_probs = torch.stack([p, 1 - p], dim=-1)  # (..., D, 2)
        per_sample = self._entropy(bit_probs).sum(dim=-1).mean()
        if self.codebook_entropy == "bit":
            avg_prob = bit_probs.reshape(-1, self.embed_dim, 2).mean(dim=0)  # (D, 2)
        else:
            groups = z.reshape(*z.shape[:-1], -1, self.group_size)  # (..., G, g)
            logits = 2 * torch.einsum("...gc,dc->...gd", groups, self.group_codebook * self.q_scale)
            avg_prob = logits.softmax(dim=-1).reshape(-1, *logits.shape[-2:]).mean(dim=0)  # (G, 2^g)
        return per_sample, self._entropy(avg_prob).sum()

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Quantised codes (scaled to the sphere) and the BSQ loss of normalised ``z``."""
        zq = self.quantize(z) * self.q_scale
        per_sample, codebook = self.entropy_terms(z)
        commit = self.beta * torch.mean(((zq.detach() - z) ** 2).sum(dim=-1))
        loss = commit + self.zeta * (self.gamma0 * per_sample - self.gamma * codebook)
        return zq, loss


class BSQuantizer(nn.Module):
    """Normalise, quantise and split into coarse/fine ids (``tokenizer`` in the tokenizer checkpoints)."""

    def __init__(
        self, s1_bits: int, s2_bits: int, beta: float, gamma0: float, gamma: float, zeta: float, group_size: int
    ) -> None:
        super().__init__()
        self.s1_bits, self.s2_bits = s1_bits, s2_bits
        self.codebook_dim = s1_bits + s2_bits
        self.bsq = BinarySphericalQuantizer(self.codebook_dim, beta, gamma0, gamma, zeta, group_size)

    def forward(
        self, z: torch.Tensor, half: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | list[torch.Tensor]]:
        """Returns ``(bsq_loss, quantized, ids)``; ``ids`` is ``[s1_ids, s2_ids]`` when ``half``."""
        z = F.normalize(z, dim=-1)
        quantized, loss = self.bsq(z)
        if half:
            ids: torch.Tensor | list[torch.Tensor] = [
                bits_to_indices(quantized[..., : self.s1_bits]),
                bits_to_indices(quantized[..., self.s1_bits :]),
            ]
        else:
            ids = bits_to_indices(quantized)
        return loss, quantized, ids
