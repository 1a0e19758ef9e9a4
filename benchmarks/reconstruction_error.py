"""How far the tokenizer's reconstruction of a bar lies from the bar: why forecasts anchor their paths.

Generated bars are the tokenizer's reconstructions (``decode(encode(x))``), so without anchoring every sample path
continues from the reconstruction of the last history bar. This reads the validation windows that
``kronos train predictor`` scores (the bars after each window's normalised part, per frequency group) from the
training corpus of a config, and prints, in the window's normalised units, the standard deviation of the close's
reconstruction error, of a one-bar close move and of a five-bar move, the error's lag-one autocorrelation, and the
variance of reconstructed moves against true ones. Needs ``../shared/data`` (the corpus is built on first use).

    python benchmarks/reconstruction_error.py [--config configs/kronos-open-forecast-more.yaml] [--windows 768]
"""

from __future__ import annotations

import argparse
import tempfile

import torch

from kronos.training.config import load_config
from kronos.training.trainer import _Trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/kronos-open-forecast-more.yaml", help="A predictor run config.")
    parser.add_argument("--windows", type=int, default=768, help="Validation windows, shared among the groups.")
    args = parser.parse_args()
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as out:
        overrides = [f"predictor.output_dir={out}", f"predictor.train.val_samples={args.windows}"]
        trainer = _Trainer("predictor", load_config(args.config, kind="predictor", overrides=overrides))
        trainer.setup()
    tokenizer, validation = trainer.task.tokenizer, trainer.validation
    close = 3
    print("| group | bars | error std | 1-bar move std | 5-bar move std | error lag-1 ac | move var, rec. / true |")
    print("|---|---|---|---|---|---|---|")
    with torch.no_grad():
        for group, part in zip(validation.group_ids, validation.parts):
            true, rec = [], []
            for batch in validation.loader(validation.dataset, part):
                x = batch["x"].float()
                s1, s2 = tokenizer.encode(x, half=True)
                start = int(batch["fitted"].min())  # validation windows are normalised on the same number of bars
                true.append(x[:, start:, close])
                rec.append(tokenizer.decode([s1, s2], half=True)[:, start:, close])
            c, r = torch.cat(true), torch.cat(rec)
            e = c - r
            lag = torch.corrcoef(torch.stack([e[:, 1:].reshape(-1), e[:, :-1].reshape(-1)]))[0, 1]
            move, move_rec = c[:, 1:] - c[:, :-1], r[:, 1:] - r[:, :-1]
            print(
                f"| {group} | {e.numel():,} | {e.std():.3f} | {move.std():.3f} | {(c[:, 5:] - c[:, :-5]).std():.3f} "
                f"| {lag:.2f} | {move_rec.var() / move.var():.2f} |"
            )


if __name__ == "__main__":
    main()
