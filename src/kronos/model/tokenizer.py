"""The Kronos tokenizer: OHLCV bars ↔ (coarse, fine) token ids.

Encoder (causal transformer) → ``quant_embed`` → BSQ → two ids per bar; the decoder maps ids back to
normalised bars. Keys and constructor arguments match the published ``Kronos-Tokenizer-*``
checkpoints.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from kronos.model.blocks import TransformerBlock
from kronos.model.config import ConfigError, TokenizerConfig
from kronos.model.hub import PretrainedMixin
from kronos.model.quantizer import BSQuantizer, indices_to_bits

__all__ = ["KronosTokenizer"]


class KronosTokenizer(PretrainedMixin, nn.Module):
    """Binary-spherical-quantisation tokenizer of normalised K-line bars ``(B, T, d_in)``.

    Checkpoint quirk: ``n_enc_layers`` / ``n_dec_layers`` of the config give ``n - 1`` blocks each.
    """

    config_class = TokenizerConfig

    def __init__(
        self,
        d_in: int = 6,
        d_model: int = 256,
        n_heads: int = 4,
        ff_dim: int = 512,
        n_enc_layers: int = 4,
        n_dec_layers: int = 4,
        ffn_dropout_p: float = 0.0,
        attn_dropout_p: float = 0.0,
        resid_dropout_p: float = 0.0,
        s1_bits: int = 10,
        s2_bits: int = 10,
        beta: float = 0.05,
        gamma0: float = 1.0,
        gamma: float = 1.1,
        zeta: float = 0.05,
        group_size: int = 4,
    ) -> None:
        super().__init__()
        cfg = TokenizerConfig(
            d_in=d_in,
            d_model=d_model,
            n_heads=n_heads,
            ff_dim=ff_dim,
            n_enc_layers=n_enc_layers,
            n_dec_layers=n_dec_layers,
            ffn_dropout_p=ffn_dropout_p,
            attn_dropout_p=attn_dropout_p,
            resid_dropout_p=resid_dropout_p,
            s1_bits=s1_bits,
            s2_bits=s2_bits,
            beta=beta,
            gamma0=gamma0,
            gamma=gamma,
            zeta=zeta,
            group_size=group_size,
        )
        self.config = cfg
        self.d_in, self.d_model = cfg.d_in, cfg.d_model
        self.s1_bits, self.s2_bits = cfg.s1_bits, cfg.s2_bits
        self.codebook_dim = cfg.codebook_dim

        def block() -> TransformerBlock:
            return TransformerBlock(d_model, n_heads, ff_dim, ffn_dropout_p, attn_dropout_p, resid_dropout_p)

        self.embed = nn.Linear(d_in, d_model)
        self.encoder = nn.ModuleList([block() for _ in range(n_enc_layers - 1)])
        self.quant_embed = nn.Linear(d_model, self.codebook_dim)
        self.tokenizer = BSQuantizer(s1_bits, s2_bits, beta, gamma0, gamma, zeta, group_size)
        self.post_quant_embed_pre = nn.Linear(s1_bits, d_model)
        self.post_quant_embed = nn.Linear(self.codebook_dim, d_model)
        self.decoder = nn.ModuleList([block() for _ in range(n_dec_layers - 1)])
        self.head = nn.Linear(d_model, d_in)
        self.apply(_init_weights)

    # -- pieces --------------------------------------------------------------------------------
    def _encode_latent(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.d_in:
            raise ValueError(
                f"tokenizer expects {self.d_in} features in the last dimension, got shape {tuple(x.shape)}"
            )
        z = self.embed(x)
        for layer in self.encoder:
            z = layer(z)
        return self.quant_embed(z)

    def _decode_latent(self, z: torch.Tensor) -> torch.Tensor:
        for layer in self.decoder:
            z = layer(z)
        return self.head(z)

    # -- the original's public methods -----------------------------------------------------------
    def forward(
        self, x: torch.Tensor
    ) -> tuple[tuple[torch.Tensor, torch.Tensor], torch.Tensor, torch.Tensor, torch.Tensor]:
        """Training forward: ``((z_pre, z), bsq_loss, quantized, ids)``.

        ``z_pre`` is reconstructed from the coarse bits alone, ``z`` from all bits; the training loss is
        ``(mse(z_pre, x) + mse(z, x) + bsq_loss) / 2``.
        """
        bsq_loss, quantized, ids = self.tokenizer(self._encode_latent(x))
        z_pre = self._decode_latent(self.post_quant_embed_pre(quantized[..., : self.s1_bits]))
        z = self._decode_latent(self.post_quant_embed(quantized))
        return (z_pre, z), bsq_loss, quantized, ids  # type: ignore[return-value]

    def encode(self, x: torch.Tensor, half: bool = False) -> torch.Tensor | list[torch.Tensor]:
        """Token ids of normalised bars: ``[s1_ids, s2_ids]`` (each ``(B, T)``) when ``half``, else joint ids."""
        _, _, ids = self.tokenizer(self._encode_latent(x), half=half)
        return ids

    def indices_to_bits(self, x: torch.Tensor | Sequence[torch.Tensor], half: bool = False) -> torch.Tensor:
        """Signed, sphere-scaled codes ``(B, T, s1_bits + s2_bits)`` of token ids."""
        if half:
            s1, s2 = x  # type: ignore[misc]
            bits = torch.cat([indices_to_bits(s1, self.s1_bits), indices_to_bits(s2, self.s2_bits)], dim=-1)
        else:
            bits = indices_to_bits(x, self.codebook_dim)  # type: ignore[arg-type]
        return (bits.float() * 2 - 1) * (1.0 / math.sqrt(self.codebook_dim))

    def decode(self, x: torch.Tensor | Sequence[torch.Tensor], half: bool = False) -> torch.Tensor:
        """Normalised bars ``(B, T, d_in)`` from token ids (``[s1_ids, s2_ids]`` when ``half``)."""
        codes = self.indices_to_bits(x, half).to(self.post_quant_embed.weight.dtype)
        return self._decode_latent(self.post_quant_embed(codes))

    @staticmethod
    def loss(x: torch.Tensor, z_pre: torch.Tensor, z: torch.Tensor, bsq_loss: torch.Tensor) -> torch.Tensor:
        """Tokenizer training loss ``(mse(z_pre, x) + mse(z, x) + bsq_loss) / 2``."""
        return (nn.functional.mse_loss(z_pre, x) + nn.functional.mse_loss(z, x) + bsq_loss) / 2

    def check_compatible(self, model_config: object) -> None:
        """Raise if a predictor expects different token bits than this tokenizer produces."""
        s1, s2 = getattr(model_config, "s1_bits", None), getattr(model_config, "s2_bits", None)
        if (s1, s2) != (self.s1_bits, self.s2_bits):
            raise ConfigError(
                f"tokenizer produces s1_bits={self.s1_bits}, s2_bits={self.s2_bits} but the model expects "
                f"s1_bits={s1}, s2_bits={s2}: they are not a matching pair"
            )


def _init_weights(module: nn.Module) -> None:
    """Initial weights for new modules: xavier-normal Linear weights, zero biases."""
    if isinstance(module, nn.Linear):
        nn.init.xavier_normal_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
