"""Bars as users hold them: the one reader of CSV/Parquet/DataFrames (:mod:`~kronos.bars.reader`), bar
sources for training (:mod:`~kronos.bars.sources`, :mod:`~kronos.bars.qlib`), validation and normalisation
(:mod:`~kronos.bars.preprocessing`), unadjusted share splits (:mod:`~kronos.bars.stocksplits`), future bar
times (:mod:`~kronos.bars.calendars`) and the bundled samples (:mod:`~kronos.bars.samples`)."""
