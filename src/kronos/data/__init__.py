"""Training data: readers for CSV/Parquet/Qlib sources, the memory-mapped corpus and window sampling.

Typical use::

    from kronos.data import iter_series, build_corpus, WindowDataset, SplitSpec

    corpus = build_corpus(iter_series(["data/"]), "corpus/", lookback=90, horizon=10,
                          split=SplitSpec(val_fraction=0.1))
    train = WindowDataset(corpus, "train")
"""

from kronos.data.corpus import (
    CORPUS_FORMAT_VERSION,
    SPLITS,
    Corpus,
    CorpusError,
    GapRule,
    SplitSpec,
    build_corpus,
)
from kronos.data.dataset import (
    EvalWindowSampler,
    RandomWindowSampler,
    WindowDataset,
    normalize_window,
)
from kronos.data.qlib import QlibSource, iter_qlib_series, pyqlib_available
from kronos.data.sources import (
    DataSourceError,
    SeriesData,
    discover_files,
    iter_series,
    read_table,
    series_from_frame,
)

__all__ = [
    "CORPUS_FORMAT_VERSION",
    "SPLITS",
    "Corpus",
    "CorpusError",
    "DataSourceError",
    "EvalWindowSampler",
    "GapRule",
    "QlibSource",
    "RandomWindowSampler",
    "SeriesData",
    "SplitSpec",
    "WindowDataset",
    "build_corpus",
    "discover_files",
    "iter_qlib_series",
    "iter_series",
    "normalize_window",
    "pyqlib_available",
    "read_table",
    "series_from_frame",
]
