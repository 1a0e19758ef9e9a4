"""From the ``data`` section of a run configuration to an opened corpus, built once per job.

The corpus is (re)built only when its fingerprint changes: the source files' paths, sizes and
modification times, the reading options, the window geometry, the time split and the gap rule. In a
distributed job rank 0 builds while the others wait; then the first process on every other node
checks that it sees the same corpus (shared file system) and builds its own copy if not.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from kronos.bars.qlib import QlibSource, iter_qlib_series, list_qlib_sources
from kronos.bars.sources import SeriesData, discover_files, iter_series
from kronos.core.distributed import DistEnv, barrier
from kronos.training.corpus import Corpus, build_corpus, file_fingerprint
from kronos.training.schema import DataConfig, RunConfig
from kronos.training.splits import CorpusError, GapRule

__all__ = ["corpus_fingerprint", "corpus_path", "iter_config_series", "prepare_corpus"]


def _qlib_source(data: DataConfig) -> QlibSource:
    q = data.qlib
    assert q is not None
    instruments = q.instruments if isinstance(q.instruments, str) else tuple(q.instruments)
    return QlibSource(
        provider_uri=q.provider_uri,
        instruments=instruments,
        freq=q.freq,
        start_time=q.start_time,
        end_time=q.end_time,
        region=q.region,
        use_pyqlib=q.use_pyqlib,
    )


def iter_config_series(data: DataConfig) -> Iterator[SeriesData]:
    """The instruments the ``data`` section names, one at a time."""
    if data.qlib is not None:
        src = _qlib_source(data)
        for s in iter_qlib_series(src, min_rows=data.min_rows):
            if data.symbols is None or s.symbol in data.symbols:
                yield s
        return
    yield from iter_series(
        data.paths,
        symbol_column=data.symbol_column,
        timestamp_column=data.timestamp_column,
        symbols=data.symbols,
        min_rows=data.min_rows,
        pattern=data.glob,
    )


def corpus_fingerprint(data: DataConfig) -> dict[str, Any]:
    """What a corpus depends on; equal fingerprints mean an existing corpus can be reused."""
    if data.qlib is not None:
        files = list_qlib_sources(_qlib_source(data))
    else:
        files = discover_files(data.paths, pattern=data.glob)
    options = {k: v for k, v in data.__dict__.items() if k not in ("corpus_dir", "clip", "paths", "qlib")}
    if data.qlib is not None:
        options["qlib"] = dict(data.qlib.__dict__)
    return {"files": file_fingerprint(files), "options": json.loads(json.dumps(options, default=str))}


def corpus_path(cfg: RunConfig) -> Path:
    """``data.corpus_dir``, or ``<output_dir>/corpus``."""
    return (
        Path(cfg.data.corpus_dir).expanduser() if cfg.data.corpus_dir else Path(cfg.output_dir).expanduser() / "corpus"
    )


def _matches(path: Path, fingerprint: dict[str, Any]) -> bool:
    try:
        corpus = Corpus.open(path)
    except CorpusError:
        return False
    return corpus.meta.get("fingerprint") == fingerprint


def prepare_corpus(cfg: RunConfig, env: DistEnv, log: Callable[[str], None] = print) -> Corpus:
    """Open the run's corpus, building it first if it is missing or stale (collective: call on all ranks)."""
    data = cfg.data
    path = corpus_path(cfg)
    error: str | None = None

    def build_if_needed() -> None:
        fingerprint = corpus_fingerprint(data)
        if _matches(path, fingerprint):
            return
        log(f"building the data corpus in {path} ...")
        corpus = build_corpus(
            iter_config_series(data),
            path,
            lookback=data.lookback,
            horizon=data.horizon,
            split=data.split_spec(),
            gap=GapRule(max_gap=data.max_gap),
            fingerprint=fingerprint,
        )
        m = corpus.meta
        log(
            f"corpus: {m['n_instruments']} instruments, {m['n_bars']:,} bars, {m['n_segments']} gap-free segments; "
            f"windows train {m['n_windows']['train']:,}, val {m['n_windows']['val']:,}, test "
            f"{m['n_windows']['test']:,} "
            f"({m['build_seconds']} s)"
        )

    # Stage 1: global rank 0 builds; the others wait. Errors are shared so every rank stops cleanly.
    if env.is_main:
        try:
            build_if_needed()
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            if not env.distributed:
                raise
    if env.distributed:
        from kronos.core.distributed import broadcast_object

        error = broadcast_object(error, env)
        if error is not None:
            raise CorpusError(f"building the corpus failed on rank 0: {error}")
        # Stage 2: other nodes without a shared file system build their own copy.
        if env.is_local_main and not env.is_main:
            build_if_needed()
        barrier(env)
    return Corpus.open(path)
