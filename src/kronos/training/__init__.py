"""Training and fine-tuning of the Kronos tokenizer and predictor.

``kronos train tokenizer CONFIG`` / ``kronos train predictor CONFIG`` on the command line (also under
``torchrun -m kronos ...``), or from Python::

    from kronos.training import train
    result = train("predictor", "configs/finetune-small-csv.yaml")
    result.best_dir  # hub layout: Kronos.from_pretrained(result.best_dir)

See ``docs/training.md`` for the configuration reference and multi-GPU / multi-node launch.
"""

# The configuration schema and its loader next to the run itself.
from kronos.training.config import apply_overrides, load_config, parse_config
from kronos.training.errors import TrainingError
from kronos.training.schema import DataConfig, ModelConfig, QlibConfig, RunConfig, TrainConfig, TrainConfigError
from kronos.training.trainer import TrainResult, train

__all__ = [
    "DataConfig",
    "ModelConfig",
    "QlibConfig",
    "RunConfig",
    "TrainConfig",
    "TrainConfigError",
    "TrainResult",
    "TrainingError",
    "apply_overrides",
    "load_config",
    "parse_config",
    "train",
]
