"""The predictor's engine: a model and tokenizer that turn prepared series into normalised sample paths.

:class:`SeriesSampler` holds what every forecasting API of :class:`~kronos.forecasting.predictor.KronosPredictor`
shares: the validated constructor settings, the :class:`~kronos.forecasting.components.Components` view of them,
and batched path generation through :func:`kronos.inference.generation.sample_paths`. Which series run
together (one left-padded batch, or one batch per length) and how many at once is decided here, so the
original-compatible API and the probabilistic API batch alike and a seeded series gets the same paths
whichever API asked.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from kronos.bars.preprocessing import FEATURE_COLS
from kronos.core.device import autocast, resolve_device
from kronos.core.errors import InputError
from kronos.core.progress import progress_bar
from kronos.core.validation import integer, number
from kronos.forecasting.components import Components
from kronos.forecasting.cost import cached_positions, estimate_run, format_bytes, kv_bytes_per_position, memory_limit
from kronos.forecasting.prepared import Prepared, left_padded, series_uniforms
from kronos.inference.decoding import last_bar_error
from kronos.inference.generation import sample_paths
from kronos.inference.options import SamplingOptions
from kronos.model.config import DEFAULT_CLIP, DEFAULT_MAX_CONTEXT
from kronos.model.kronos import Kronos
from kronos.model.tokenizer import KronosTokenizer

__all__ = ["Draw", "SeriesSampler", "anchor_shifts"]


def anchor_shifts(c: Components, windows: Sequence[np.ndarray]) -> np.ndarray:
    """Per normalised history window ``(n, features)``: the shift that makes generated paths start from its last bar
    as given, not from the tokenizer's reconstruction of it (``SamplingOptions.anchor``): the last bar's
    reconstruction error (:func:`~kronos.inference.decoding.last_bar_error`). The four prices move by the close's
    error, so each decoded bar keeps its shape (its high and low around its open and close; per-column errors would
    break half the bars of a daily stock); volume and amount by their own. Histories are encoded unpadded, one batch
    per length (the tokenizer has no key mask)."""
    out = np.zeros((len(windows), len(FEATURE_COLS)), dtype=np.float32)
    by_length: dict[int, list[int]] = defaultdict(list)
    for i, x in enumerate(windows):
        by_length[len(x)].append(i)
    for rows in by_length.values():
        x = torch.clip(c.tensor(np.stack([windows[i] for i in rows])), -c.clip, c.clip)
        with torch.no_grad():
            out[rows] = last_bar_error(c.tokenizer, x, c.max_context).float().cpu().numpy()
    close = FEATURE_COLS.index("close")
    out[:, :close] = out[:, close : close + 1]
    return out


@dataclass(frozen=True)
class Draw:
    """How one call draws its sample paths, passed whole from the public methods down to :meth:`SeriesSampler._paths`.

    ``opts`` the validated sampling settings; ``seeds`` one per series (each series its own stream), else
    ``generator`` (None: PyTorch's global one) for the whole call; ``first_path`` where each series' seeded stream
    starts (one for all, or one per series: a forecast computed in slices of paths); ``verbose`` a progress bar.
    """

    opts: SamplingOptions
    seeds: Sequence[int] | None = None
    generator: torch.Generator | None = None
    verbose: bool = False
    first_path: int | Sequence[int] = 0


class SeriesSampler:
    """A model and its tokenizer on a device, generating normalised paths for prepared series.

    The base of :class:`~kronos.forecasting.predictor.KronosPredictor`; it has no public forecasting
    methods of its own.
    """

    def __init__(
        self,
        model: Kronos,
        tokenizer: KronosTokenizer,
        device: str | torch.device | None = None,
        max_context: int = DEFAULT_MAX_CONTEXT,
        clip: float = DEFAULT_CLIP,
        *,
        precision: str = "fp32",
    ) -> None:
        tokenizer.check_compatible(model.config)
        # two bars at least: the cached window must hold a history bar and the bar being forecast
        self.max_context = integer("max_context", max_context, minimum=2)
        number("clip", clip, low=0.0)
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer.to(self.device).eval()
        self.clip = clip
        self.precision = precision
        autocast(self.device, precision)  # validates the name
        #: The most memory one generation run may need (bytes); a larger run is refused with how to fit.
        #: Default: :func:`kronos.forecasting.cost.memory_limit` (``$KRONOS_MEMORY_LIMIT``); set it to override.
        self.memory_limit = memory_limit()
        self.price_cols = FEATURE_COLS[:4]
        self.vol_col, self.amt_vol = FEATURE_COLS[4], FEATURE_COLS[5]

    @property
    def components(self) -> Components:
        """The model, tokenizer, device, ``max_context`` and ``clip``: what :mod:`kronos.forecasting.tasks`
        and synthesis take."""
        return Components(self.model, self.tokenizer, self.device, self.max_context, self.clip)

    # -- generation ------------------------------------------------------------------------------
    def _paths(self, prepared: Sequence[Prepared], pred_len: int, draw: Draw) -> list[np.ndarray]:
        """Normalised paths ``(sample_count, pred_len, 6)`` per series, float32.

        Cached exact generation runs histories of different lengths in one left-padded batch with
        the padding masked; the original algorithm (``use_cache=False``) and ``window="block"`` run
        one batch per length. Either way each series computes what it would compute alone. With
        ``draw.seeds`` every series samples from its own generator (inverse CDF of its own uniforms), so
        its paths do not depend on the batch, its order or ``batch_size``: series are then sorted by
        length and run ``batch_size`` at a time (default: as many as fit a ~2 GiB key/value cache).
        Without seeds the draws come from ``draw.generator`` in one stream over the whole batch (uniforms, or the
        original's ``torch.multinomial`` stream with ``opts.draws == "multinomial"``, as ``predict`` uses), and
        ``batch_size`` defaults to all series at once. ``draw.first_path``: with seeds, the paths from there on of
        each series' stream.

        Every batch's memory estimate (:mod:`kronos.forecasting.cost`) is checked against
        :attr:`memory_limit` before anything runs.
        """
        opts, seeds, first_path = draw.opts, draw.seeds, draw.first_path
        batches = self._batches(prepared, pred_len, opts, seeds)
        weights = (sum(p.numel() for p in self.model.parameters()), next(self.model.parameters()).element_size())
        for members in batches:
            self._check_memory(max(len(prepared[i].x) for i in members), pred_len, len(members), opts, weights)
        starts = [first_path] * len(prepared) if isinstance(first_path, int) else list(first_path)
        out: list[np.ndarray | None] = [None] * len(prepared)
        with progress_bar(enabled=draw.verbose, transient=True) as progress:
            task = progress.add_task("Generating bars", total=pred_len * len(batches))
            for members in batches:
                x = self.components.tensor(left_padded([prepared[i].x for i in members]))
                xs = self.components.tensor(left_padded([prepared[i].x_stamp for i in members]))
                ys = torch.from_numpy(np.stack([prepared[i].y_stamp for i in members])).to(self.device)
                lengths = torch.tensor([len(prepared[i].x) for i in members], device=self.device)
                uniforms = None
                if seeds is not None:
                    draws = [series_uniforms(seeds[i], opts.sample_count, pred_len, starts[i]) for i in members]
                    uniforms = torch.cat(draws).to(self.device)
                with autocast(self.device, self.precision):
                    paths = sample_paths(
                        self.tokenizer,
                        self.model,
                        x,
                        xs,
                        ys,
                        pred_len,
                        self.max_context,
                        opts,
                        generator=draw.generator,
                        on_step=lambda: progress.advance(task),
                        uniforms=uniforms,
                        lengths=lengths,
                    )
                    shift = self._anchors([prepared[i] for i in members]) if opts.anchor else None
                paths_np = paths.float().cpu().numpy()
                for row, i in enumerate(members):
                    out[i] = paths_np[row] if shift is None else paths_np[row] + shift[row]
        return out  # type: ignore[return-value]

    def _anchors(self, prepared: Sequence[Prepared]) -> np.ndarray:
        """Per series ``(n, 1, 1, features)``: what ``SamplingOptions.anchor`` adds to every generated bar
        (:func:`anchor_shifts`)."""
        return anchor_shifts(self.components, [p.x for p in prepared])[:, None, None, :]

    def _check_memory(
        self, history: int, pred_len: int, series: int, opts: SamplingOptions, weights: tuple[int, int]
    ) -> None:
        """Refuse a run whose memory estimate exceeds :attr:`memory_limit`, saying how to fit under it
        (``weights``: the model's parameter count and bytes per parameter, counted once per call)."""
        params, itemsize = weights
        cfg, ctx, sample_count = self.model.config, self.max_context, opts.sample_count
        shared = opts.use_cache and opts.share_prefix

        def need(paths: int) -> int:
            rows = series * paths
            return estimate_run(
                cfg, params, ctx, history, pred_len, rows, itemsize, shared_prefix=shared, series=series
            ).memory

        if need(sample_count) <= self.memory_limit:
            return
        per_path = max(1, need(2) - need(1))
        fits = max(0, (self.memory_limit - need(0)) // per_path)
        advice = f"at most {fits} sample paths" + (" per series, or a smaller batch_size" if series > 1 else "")
        raise InputError(
            f"{series} series x {sample_count} sample paths x {pred_len} bars need an estimated "
            f"{format_bytes(need(sample_count))} "
            f"of memory, over the limit of {format_bytes(self.memory_limit)}; use {advice}, or a shorter pred_len, "
            "or raise the limit (KRONOS_MEMORY_LIMIT=16G, or predictor.memory_limit)"
        )

    def _batches(
        self, prepared: Sequence[Prepared], pred_len: int, opts: SamplingOptions, seeds: Sequence[int] | None
    ) -> list[list[int]]:
        """Which series run together: one padded batch (cached exact) or one group per length, ``batch_size`` each."""
        pad = opts.use_cache and opts.window == "exact"
        batch_size = opts.batch_size
        order = list(range(len(prepared)))
        if seeds is not None:
            if len(seeds) != len(prepared):
                raise InputError(f"seeds has {len(seeds)} entries for {len(prepared)} series")
            order.sort(key=lambda i: -len(prepared[i].x))  # similar lengths together: little padding
            if batch_size is None:
                batch_size = self._auto_batch_size(max(len(p.x) for p in prepared), pred_len, opts)
        groups: dict[int, list[int]] = defaultdict(list)
        for i in order:
            groups[0 if pad else len(prepared[i].x)].append(i)
        size = batch_size or len(prepared)
        return [members[k : k + size] for members in groups.values() for k in range(0, len(members), size)]

    def _auto_batch_size(self, hist: int, pred_len: int, opts: SamplingOptions, budget: int = 2 << 30) -> int:
        """Series per batch whose key/value cache (all paths) fits ``budget`` bytes.

        With a shared prefix a series holds its window once plus each path's generated positions;
        without, every path holds the whole window.
        """
        window = min(self.max_context, hist + pred_len)
        itemsize = next(self.model.parameters()).element_size()
        shared = opts.share_prefix and opts.sample_count > 1
        per_path, per_series = cached_positions(window, pred_len, shared)
        positions = per_series + opts.sample_count * per_path
        return max(1, budget // (kv_bytes_per_position(self.model.config, itemsize) * positions))
