"""A training run's validation: which windows it scores, and the metrics over them.

Why its own module: the windows are chosen once per run (an evenly spread, fixed subset, split across ranks in equal
shares) and, with frequency-balanced sampling, kept apart per frequency group, so the selection metric of each group
(``loss_daily``, ...) is reported beside the pooled one and the pooled loss weighs groups as training draws them.
The training loop (:mod:`kronos.training.trainer`) only asks for a validation and records what it returned.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from kronos.training import distributed as dd
from kronos.training.corpus import FREQUENCY_GROUPS, Corpus
from kronos.training.objectives import Task
from kronos.training.windows import EvalWindowSampler, WindowDataset

__all__ = ["Validation", "window_loader"]


def window_loader(
    dataset: WindowDataset, sampler: Any, batch_size: int, *, num_workers: int, device: torch.device, seed: int
) -> DataLoader:
    """A loader of ``dataset``'s windows in ``sampler``'s order; it draws nothing from the global random state (a
    private generator seeded with ``seed``), so building one does not make a resumed run diverge."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        drop_last=False,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
        prefetch_factor=4 if num_workers > 0 else None,
        generator=torch.Generator().manual_seed(seed),
    )


class Validation:
    """The validation windows of a run and the metrics a task computes over them.

    ``shares`` are the frequency groups' training shares (None: windows drawn uniformly); a group with a share
    gets its own part of the windows and its own selection metric, ``{task.select}_{group}``.
    """

    def __init__(
        self,
        task: Task,
        corpus: Corpus,
        dataset: WindowDataset,
        *,
        samples: int,
        shares: Sequence[float] | None,
        env: dd.DistEnv,
        loader: Callable[[WindowDataset, Any], DataLoader],
    ) -> None:
        self.task, self.dataset, self.env, self.loader = task, dataset, env, loader
        # the drawn groups, name -> index into FREQUENCY_GROUPS (the values of corpus.window_groups)
        self.group_ids = {g: i for i, (g, share) in enumerate(zip(FREQUENCY_GROUPS, shares or [])) if share > 0}
        groups = None
        if shares is not None:
            groups = corpus.window_groups("val")
            groups = np.where(np.asarray(shares)[groups] > 0, groups, -1)
        sampler = EvalWindowSampler(len(dataset), samples, rank=env.rank, world_size=env.world_size, groups=groups)
        ids = list(self.group_ids.values())  # this rank's validation windows, one list per drawn group
        self.parts = sampler.per_group(groups, ids) if ids else [list(sampler)]

    @property
    def group_metrics(self) -> list[str]:
        """The per-group metric names this validation reports besides the task's own."""
        return [f"{self.task.select}_{g}" for g in self.group_ids]

    @torch.no_grad()
    def __call__(self, model: nn.Module, autocast: Callable[[], Any]) -> dict[str, float]:
        """The task's metrics over every rank's validation windows (each group's windows run as batches of their
        own), the per-group selection metrics, and ``samples``, the windows scored."""
        names = ("loss", *self.task.metrics)
        sums = torch.zeros((len(self.parts), len(names) + 1), dtype=torch.float64)  # per part: sums, count
        device = self.env.device
        with self.task.eval_mode(model):
            for k, part in enumerate(self.parts):
                for batch in self.loader(self.dataset, part):
                    b = {key: batch[key].to(device, non_blocking=True) for key in ("x", "stamp", "fitted")}
                    with autocast():
                        terms = self.task.eval_metrics(model, b)
                    n = b["x"].shape[0]
                    sums[k] += torch.tensor([*(float(terms[name]) * n for name in names), n], dtype=torch.float64)
        sums = dd.all_reduce_sum(sums, self.env)
        total, select = sums.sum(0), names.index(self.task.select)
        out = {name: float(total[i] / total[-1]) for i, name in enumerate(names)}
        for k, g in enumerate(self.group_ids):
            if sums[k, -1] > 0:
                out[f"{self.task.select}_{g}"] = float(sums[k, select] / sums[k, -1])
        return out | {"samples": float(total[-1])}
