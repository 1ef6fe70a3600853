"""Training pipeline (optional extra ``train``): configs, data and degradations, losses,
the training loop. The filter itself never imports this package."""

from .config import ConfigError, TrainConfig, config_from_dict, load_config
from .trainer import CheckpointError, Trainer, train

__all__ = ["CheckpointError", "ConfigError", "TrainConfig", "Trainer", "config_from_dict", "load_config", "train"]
