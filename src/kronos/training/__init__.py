"""Training and fine-tuning of the Kronos tokenizer and predictor.

``kronos train tokenizer CONFIG`` / ``kronos train predictor CONFIG`` on the command line (also under
``torchrun -m kronos ...``), or from Python::

    from kronos.training import train
    result = train("predictor", "configs/finetune-small-csv.yaml")
    result.best_dir  # hub layout: Kronos.from_pretrained(result.best_dir)

See ``docs/training.md`` for the configuration reference and multi-GPU / multi-node launch.
"""

# Re-export the configuration schema (kronos.training.config.__all__) next to the run itself.
from kronos.training.config import *  # noqa: F403
from kronos.training.config import __all__ as _config_api
from kronos.training.trainer import TrainingError, TrainResult, train

__all__ = [*_config_api, "TrainResult", "TrainingError", "train"]
