"""What is trained: the tokenizer (reconstruction + BSQ loss) or the predictor (next-token loss).

A task builds its model (fresh from a configuration, or from a checkpoint to fine-tune), computes the
training loss and the validation metrics of a batch, and names the metric that picks the best
checkpoint. The loop in :mod:`kronos.training.trainer` is shared by both.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from kronos.model.config import KronosConfig, TokenizerConfig
from kronos.model.kronos import Kronos
from kronos.model.registry import resolve_source
from kronos.model.tokenizer import KronosTokenizer
from kronos.training.schema import RunConfig

__all__ = ["PredictorTask", "Task", "TokenizerTask", "make_task"]


def _resolve_init(name: str, part: str = "model") -> str:
    """A model name (``kronos-small``, ``kronos-open``, a predictor directory) to its model or tokenizer source,
    as :func:`kronos.model.registry.resolve_source` resolves it; a checkpoint without a paired tokenizer as is."""
    source = resolve_source(name)
    if part == "model":
        return str(source.model)
    return name if source.tokenizer is None else str(source.tokenizer)


class Task:
    """Interface shared by the two training tasks."""

    kind: str = ""
    #: metric columns (besides ``loss``) logged for train and validation rows
    metrics: tuple[str, ...] = ()
    #: validation metric whose minimum selects ``best/``
    select: str = "loss"

    def __init__(self, cfg: RunConfig, device: torch.device) -> None:
        self.cfg = cfg
        self.device = device

    def build_model(self) -> nn.Module:  # pragma: no cover - interface
        raise NotImplementedError

    def model_config(self, module: nn.Module) -> dict[str, Any]:
        """The ``config.json`` contents of the trained module."""
        return module.config.to_dict()  # type: ignore[union-attr]

    def train_loss(
        self, model: nn.Module, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:  # pragma: no cover
        raise NotImplementedError

    def eval_metrics(
        self, model: nn.Module, batch: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:  # pragma: no cover
        raise NotImplementedError

    @contextlib.contextmanager
    def eval_mode(self, model: nn.Module) -> Iterator[None]:
        """Switch ``model`` to evaluation for validation, restoring training mode afterwards."""
        model.eval()
        try:
            yield
        finally:
            model.train()

    def bars_per_sample(self) -> int:
        return self.cfg.data.lookback + self.cfg.data.horizon


class TokenizerTask(Task):
    """Tokenizer training: ``(mse(z_pre, x) + mse(z, x) + bsq_loss) / 2`` on normalised windows.

    Validation reports the same terms; ``recon`` (the full-code reconstruction MSE, what forecasting
    depends on) selects the best checkpoint, since the BSQ entropy terms can lower the total loss
    without improving reconstructions.
    """

    kind = "tokenizer"
    metrics = ("recon", "recon_pre", "bsq")
    select = "recon"

    def build_model(self) -> nn.Module:
        m = self.cfg.model
        if m.init is not None:
            model = KronosTokenizer.from_pretrained(_resolve_init(m.init, "tokenizer"))
        else:
            model = KronosTokenizer.from_config(TokenizerConfig.from_dict(m.config or {}, source="model.config"))
        return model.train()

    def _terms(self, model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
        (z_pre, z), bsq_loss, _, _ = model(x)
        recon_pre = F.mse_loss(z_pre.float(), x)
        recon = F.mse_loss(z.float(), x)
        bsq = bsq_loss.float()
        return {"loss": (recon_pre + recon + bsq) / 2, "recon": recon, "recon_pre": recon_pre, "bsq": bsq}

    def train_loss(
        self, model: nn.Module, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        terms = self._terms(model, batch["x"])
        return terms["loss"], terms

    def eval_metrics(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return self._terms(model, batch["x"])


class PredictorTask(Task):
    """Predictor training on the frozen tokenizer's tokens: inputs are bars ``0..T-2``, targets ``1..T-1``.

    The fine (s2) head sees a coarse token sampled from the model's own coarse distribution (the
    original fine-tuning) or, with ``train.teacher_forcing``, the true next coarse token. Validation
    is teacher-forced and deterministic, and keeps the dependency layer causal (see :meth:`eval_mode`),
    so its loss measures real next-bar prediction. Tokens are computed in float32 outside autocast,
    exactly as at inference.
    """

    kind = "predictor"
    metrics = ("ce_s1", "ce_s2")
    select = "loss"

    def __init__(self, cfg: RunConfig, device: torch.device) -> None:
        super().__init__(cfg, device)
        self.tokenizer = self._load_tokenizer()

    def _tokenizer_source(self) -> str:
        m = self.cfg.model
        if m.tokenizer is not None:
            return _resolve_init(m.tokenizer, "tokenizer")
        tokenizer = resolve_source(str(m.init)).tokenizer
        assert tokenizer is not None, "checked by RunConfig.for_kind"
        return str(tokenizer)

    def _load_tokenizer(self) -> KronosTokenizer:
        tok = KronosTokenizer.from_pretrained(self._tokenizer_source()).to(self.device).eval()
        for p in tok.parameters():
            p.requires_grad_(False)
        return tok

    def build_model(self) -> nn.Module:
        m = self.cfg.model
        if m.init is not None:
            model = Kronos.from_pretrained(_resolve_init(m.init))
        else:
            model = Kronos.from_config(KronosConfig.from_dict(m.config or {}, source="model.config"))
        self.tokenizer.check_compatible(model.config)
        return model.train()

    @torch.no_grad()
    def tokens(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Coarse and fine token ids ``(B, T)`` of normalised windows, from the frozen tokenizer in fp32."""
        device_type = x.device.type
        with torch.autocast(device_type=device_type, enabled=False):
            s1, s2 = self.tokenizer.encode(x.float(), half=True)
        return s1, s2

    def _loss(self, model: nn.Module, batch: dict[str, torch.Tensor], teacher_forcing: bool) -> dict[str, torch.Tensor]:
        s1, s2 = self.tokens(batch["x"])
        stamp = batch["stamp"]
        s1_in, s2_in, stamp_in = s1[:, :-1], s2[:, :-1], stamp[:, :-1]
        s1_tgt, s2_tgt = s1[:, 1:], s2[:, 1:]
        # dep_causal=True: in eval mode too, the fine head must not see later bars of the window.
        s1_logits, s2_logits = model(
            s1_in, s2_in, stamp_in, use_teacher_forcing=teacher_forcing, s1_targets=s1_tgt, dep_causal=True
        )
        head = _inner(model).head
        ignored = None
        if self.cfg.train.targets == "forecast":  # score only the bars after those the normaliser saw
            fitted = batch["fitted"]
            target_bar = torch.arange(1, s1.shape[1], device=s1_tgt.device)
            ignored = target_bar[None, :] < fitted[:, None]
        loss, ce_s1, ce_s2 = head.compute_loss(s1_logits.float(), s2_logits.float(), s1_tgt, s2_tgt, ignored)
        return {"loss": loss, "ce_s1": ce_s1, "ce_s2": ce_s2}

    def train_loss(
        self, model: nn.Module, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        terms = self._loss(model, batch, self.cfg.train.teacher_forcing)
        return terms["loss"], terms

    def eval_metrics(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return self._loss(model, batch, teacher_forcing=True)

    def bars_per_sample(self) -> int:
        return self.cfg.data.lookback + self.cfg.data.horizon - 1


def _inner(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def make_task(kind: str, cfg: RunConfig, device: torch.device) -> Task:
    """The task object for ``kind`` (``tokenizer`` or ``predictor``)."""
    if kind == "tokenizer":
        return TokenizerTask(cfg, device)
    if kind == "predictor":
        return PredictorTask(cfg, device)
    raise ValueError(f"unknown training kind {kind!r}; expected 'tokenizer' or 'predictor'")
