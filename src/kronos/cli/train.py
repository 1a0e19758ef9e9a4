"""``kronos train``: tokenizer and predictor training, corpus building and config checking.

Single process::

    kronos train tokenizer configs/pretrain-mini-folder.yaml
    kronos train predictor configs/finetune-small-csv.yaml --set train.max_steps=200

Several processes or machines (the same command under torchrun)::

    torchrun --nproc_per_node=4 -m kronos train predictor configs/finetune-small-csv.yaml
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from kronos.cli.app import app

train_app = typer.Typer(
    name="train",
    help="Train or fine-tune the Kronos tokenizer and predictor from a YAML config (works under torchrun).",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(train_app, name="train")

_SET_HELP = "Override a config value, KEY=VALUE with a dotted key (repeatable), e.g. --set train.max_steps=100."


def _load(config: Path, kind: str | None, overrides: list[str], output_dir: str | None) -> object:
    from kronos.training.config import load_config

    extra = list(overrides) + ([f"output_dir={output_dir}"] if output_dir else [])
    return load_config(config, kind=kind, overrides=extra)  # type: ignore[arg-type]


def _load_checked(config: Path, kind: str | None, overrides: list[str]) -> object:
    """Validate ``--kind`` and load the config (errors are reported by :mod:`kronos.cli.errors`)."""
    if kind not in (None, "tokenizer", "predictor"):
        raise typer.BadParameter(f"must be tokenizer or predictor, got {kind!r}", param_hint="'--kind'")
    return _load(config, kind, overrides, None)


def _run(kind: str, config: Path, overrides: list[str], output_dir: str | None) -> None:
    from kronos.training import train

    cfg = _load(config, kind, overrides, output_dir)
    result = train(kind, cfg)  # type: ignore[arg-type]
    if result.model is not None and _is_main():
        lines = [
            f"{kind} training finished after {result.steps} steps ({result.epochs} "
            f"epochs{', stopped early' if result.stopped_early else ''})."
        ]
        if result.initial_val is not None and result.final_val is not None:
            lines.append(f"validation loss {result.initial_val['loss']:.5f} -> {result.final_val['loss']:.5f}")
        lines.append(
            f"best checkpoint: {result.best_dir} (step {result.best_step}, val metric {result.best_metric:.5f})"
        )
        lines.append(f"metrics: {result.output_dir / 'metrics.csv'}")
        if (result.output_dir / "predictor").is_dir():
            lines.append(f"forecast with: KronosPredictor.from_pretrained({str(result.output_dir / 'predictor')!r})")
        typer.echo("\n".join(lines), err=True)


def _is_main() -> bool:
    import os

    return os.environ.get("RANK", "0") == "0"


@train_app.command("tokenizer")
def tokenizer_command(
    config: Path = typer.Argument(..., help="YAML run configuration (see docs/training.md)."),
    set_: list[str] = typer.Option([], "--set", "-s", help=_SET_HELP),
    output_dir: str | None = typer.Option(None, "--output-dir", "-o", help="Override output_dir."),
) -> None:
    """Train (or fine-tune) the tokenizer: reconstruction + BSQ loss."""
    _run("tokenizer", config, set_, output_dir)


@train_app.command("predictor")
def predictor_command(
    config: Path = typer.Argument(..., help="YAML run configuration (see docs/training.md)."),
    set_: list[str] = typer.Option([], "--set", "-s", help=_SET_HELP),
    output_dir: str | None = typer.Option(None, "--output-dir", "-o", help="Override output_dir."),
) -> None:
    """Train (or fine-tune) the predictor on the frozen tokenizer's tokens: next-token loss."""
    _run("predictor", config, set_, output_dir)


@train_app.command("corpus")
def corpus_command(
    config: Path = typer.Argument(..., help="YAML run configuration; only its data section (and output_dir) is used."),
    kind: str | None = typer.Option(
        None, help="tokenizer or predictor: which section to use when the config has both."
    ),
    set_: list[str] = typer.Option([], "--set", "-s", help=_SET_HELP),
) -> None:
    """Build (or check) the memory-mapped data corpus of a config, without training."""
    from kronos.core.distributed import DistEnv
    from kronos.training.data import corpus_path, prepare_corpus

    cfg = _load_checked(config, kind, set_)
    corpus = prepare_corpus(cfg, DistEnv(), log=lambda m: typer.echo(m, err=True))  # type: ignore[arg-type]
    m = corpus.meta
    typer.echo(
        f"{corpus_path(cfg)}: {m['n_instruments']} instruments, {m['n_bars']:,} bars; windows of {corpus.window} bars: "  # type: ignore[arg-type]
        f"train {m['n_windows']['train']:,}, val {m['n_windows']['val']:,}, test {m['n_windows']['test']:,}"
    )


@train_app.command("check")
def check_command(
    config: Path = typer.Argument(..., help="YAML run configuration."),
    kind: str | None = typer.Option(None, help="tokenizer or predictor: also check the model section for that kind."),
    set_: list[str] = typer.Option([], "--set", "-s", help=_SET_HELP),
) -> None:
    """Validate a config and print it with every default filled in."""
    from kronos.training.config import dump_config

    cfg = _load_checked(config, kind, set_)
    sys.stdout.write(dump_config(cfg))  # type: ignore[arg-type]
