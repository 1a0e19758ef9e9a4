"""Checkpoint I/O in the published hub layout: ``config.json`` + ``model.safetensors``.

Reads a local directory or a Hugging Face hub id (through ``huggingface_hub``, so the hub cache and
``HF_HUB_OFFLINE=1`` work), validates the config keys, and never unpickles anything. Writes the same
layout atomically, so the original implementation loads what we save.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch
from safetensors.torch import load_file, save_file

from kronos.config import ConfigError
from kronos.fileio import atomic_write, atomic_write_text

__all__ = ["CONFIG_NAME", "WEIGHTS_NAME", "PretrainedMixin", "resolve_file"]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"

M = TypeVar("M", bound="PretrainedMixin")
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def resolve_file(
    path_or_repo: str | os.PathLike,
    filename: str,
    *,
    subfolder: str | None = None,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
    token: str | bool | None = None,
) -> Path:
    """Local path of ``filename`` in a checkpoint directory or hub repo (downloaded or from the cache)."""
    local = Path(path_or_repo)
    if subfolder:
        local = local / subfolder
    if local.is_dir():
        target = local / filename
        if not target.is_file():
            raise FileNotFoundError(f"checkpoint directory {local} has no {filename}")
        return target
    if Path(path_or_repo).exists() or not _HUB_ID.fullmatch(str(path_or_repo)):
        raise FileNotFoundError(f"{path_or_repo} is neither a checkpoint directory nor a hub id like 'NeoQuasar/Kronos-small'")
    from huggingface_hub import hf_hub_download

    return Path(
        hf_hub_download(
            repo_id=str(path_or_repo), filename=filename, subfolder=subfolder, revision=revision,
            cache_dir=cache_dir, local_files_only=local_files_only, token=token,
        )  # fmt: skip
    )


class PretrainedMixin:
    """``from_pretrained`` / ``save_pretrained`` for modules built from a config dataclass.

    Subclasses set ``config_class`` and keep their config in ``self.config``; their constructor takes
    the config's fields as keyword arguments (the published ``config.json`` keys).
    """

    config_class: ClassVar[Any]
    config: Any

    @classmethod
    def from_config(cls: type[M], config: Any) -> M:
        """A freshly initialised module of the given configuration (dataclass or mapping)."""
        if isinstance(config, dict):
            config = cls.config_class.from_dict(config)
        return cls(**config.to_dict())  # type: ignore[call-arg]

    @classmethod
    def from_pretrained(
        cls: type[M],
        path_or_repo: str | os.PathLike,
        *,
        subfolder: str | None = None,
        revision: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        local_files_only: bool = False,
        token: str | bool | None = None,
        map_location: str | torch.device = "cpu",
        strict: bool = True,
    ) -> M:
        """Load a checkpoint from a local directory or a hub id such as ``NeoQuasar/Kronos-small``."""
        kwargs = dict(subfolder=subfolder, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only, token=token)
        config_path = resolve_file(path_or_repo, CONFIG_NAME, **kwargs)  # type: ignore[arg-type]
        try:
            raw = json.loads(config_path.read_text())
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{config_path}: not valid JSON ({exc})") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{config_path}: expected a JSON object of constructor arguments")
        config = cls.config_class.from_dict(raw, source=str(config_path), require_all=True)
        module = cls.from_config(config)
        weights_path = resolve_file(path_or_repo, WEIGHTS_NAME, **kwargs)  # type: ignore[arg-type]
        state = load_file(str(weights_path), device=str(map_location))
        try:
            result = module.load_state_dict(state, strict=False)  # type: ignore[attr-defined]
        except RuntimeError as exc:  # shape mismatches
            raise ConfigError(f"{weights_path} does not fit {cls.__name__}({config}): {exc}") from None
        if strict and (result.missing_keys or result.unexpected_keys):
            raise ConfigError(
                f"{weights_path} does not match {cls.__name__}({config}): "
                f"missing keys {result.missing_keys[:8]}, unexpected keys {result.unexpected_keys[:8]}"
            )
        module.eval()  # type: ignore[attr-defined]
        return module

    def save_pretrained(self, save_directory: str | os.PathLike) -> Path:
        """Write ``config.json`` and ``model.safetensors`` (state dict, saved buffers included)."""
        out = Path(save_directory)
        out.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().to("cpu").contiguous() for k, v in self.state_dict().items()}  # type: ignore[attr-defined]
        atomic_write(out / WEIGHTS_NAME, lambda tmp: save_file(state, str(tmp), metadata={"format": "pt"}))
        atomic_write_text(out / CONFIG_NAME, json.dumps(self.config.to_dict(), indent=2, sort_keys=True) + "\n")
        return out

    def push_to_hub(self, repo_id: str, *, token: str | None = None, private: bool = False, commit_message: str = "Upload Kronos checkpoint") -> str:
        """Upload the hub layout to ``repo_id`` (needs network and a token)."""
        from huggingface_hub import HfApi

        api = HfApi(token=token)
        api.create_repo(repo_id, private=private, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            self.save_pretrained(tmp)
            info = api.upload_folder(repo_id=repo_id, folder_path=tmp, commit_message=commit_message)
        return str(info)
