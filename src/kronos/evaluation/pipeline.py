"""End-to-end runs behind ``kronos evaluate`` and ``kronos backtest``: compute, then write a folder.

The stable import path of both runs. Each lives in its own module: :mod:`kronos.evaluation.evaluation_run`
(rolling evaluation and its report), :mod:`kronos.evaluation.backtest_run` (signals, trades and their report);
what they share (the staging folder that keeps earlier results intact on failure) is in
:mod:`kronos.evaluation.common`.
"""

from __future__ import annotations

from kronos.evaluation.backtest_run import BacktestOutput, run_backtest
from kronos.evaluation.common import split_names
from kronos.evaluation.evaluation_run import EvaluationOutput, run_evaluation

__all__ = ["BacktestOutput", "EvaluationOutput", "run_backtest", "run_evaluation", "split_names"]
