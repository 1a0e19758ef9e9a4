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

from kronos.core.files import atomic_write, atomic_write_text
from kronos.model.config import ConfigError

__all__ = [
    "CONFIG_NAME",
    "WEIGHTS_NAME",
    "CheckpointNotFoundError",
    "PretrainedMixin",
    "hub_unreachable_reason",
    "resolve_file",
]

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
        raise FileNotFoundError(
            f"{path_or_repo} is neither a checkpoint directory nor a hub id like 'NeoQuasar/Kronos-small'"
        )
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    local_only = local_files_only
    if not local_only:
        # one quick probe instead of huggingface_hub's retries (25 s) when the hub is out of reach;
        # a file already in the hub cache is still found
        unreachable = hub_unreachable_reason()
        local_only = unreachable is not None
    kwargs = dict(
        repo_id=str(path_or_repo),
        filename=filename,
        subfolder=subfolder,
        revision=revision,
        cache_dir=cache_dir,
        token=token,
    )
    try:
        return Path(hf_hub_download(**kwargs, local_files_only=local_only))  # type: ignore[arg-type]
    except LocalEntryNotFoundError:
        why = "local_files_only=True was given" if local_files_only else f"the hub {unreachable}"
        raise CheckpointNotFoundError(
            f"{path_or_repo}: no such local directory, and {filename} of hub repo {path_or_repo!r} is not in "
            "the hub cache "
            f"({why})"
        ) from None
    except (RepositoryNotFoundError, RevisionNotFoundError) as exc:
        raise CheckpointNotFoundError(
            f"{path_or_repo}: no such local directory, and the hub has no accessible repo of that name "
            f"({type(exc).__name__})"
        ) from None
    except EntryNotFoundError:
        raise CheckpointNotFoundError(f"hub repo {path_or_repo!r} has no {filename}") from None


class CheckpointNotFoundError(FileNotFoundError):
    """A checkpoint that is neither a local directory nor reachable on the hub (or lacks a file)."""


def hub_unreachable_reason(timeout: float = 5.0) -> str | None:
    """``None`` when the Hugging Face hub answers, else why not (offline mode, or the network error).

    One HEAD request with a short timeout; the result is remembered for the process.
    """
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}:
        return "is offline (HF_HUB_OFFLINE is set)"
    endpoint = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    if endpoint not in _PROBED:
        import urllib.error
        import urllib.request

        try:
            urllib.request.urlopen(urllib.request.Request(endpoint, method="HEAD"), timeout=timeout).close()
            _PROBED[endpoint] = None
        except urllib.error.HTTPError:  # an HTTP answer, even an error status, means the hub is there
            _PROBED[endpoint] = None
        except (OSError, ValueError) as exc:  # URLError, timeouts, refused connections, a malformed endpoint
            reason = getattr(exc, "reason", exc)
            _PROBED[endpoint] = f"could not be reached at {endpoint} ({reason})"
    return _PROBED[endpoint]


_PROBED: dict[str, str | None] = {}


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
        kwargs = dict(
            subfolder=subfolder, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only, token=token
        )
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
        try:
            state = load_file(str(weights_path), device=str(map_location))
        except Exception as exc:  # safetensors raises its own error types for truncated or foreign files
            raise ConfigError(
                f"{weights_path}: not a readable safetensors file ({type(exc).__name__}: {exc}); is it truncated?"
            ) from None
        for key, tensor in state.items():
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                bad = int((~torch.isfinite(tensor)).sum())
                raise ConfigError(
                    f"{weights_path}: tensor {key!r} has {bad} NaN or infinite value(s); the checkpoint is corrupt"
                )
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

    def push_to_hub(
        self,
        repo_id: str,
        *,
        token: str | None = None,
        private: bool = False,
        commit_message: str = "Upload Kronos checkpoint",
    ) -> str:
        """Upload the hub layout to ``repo_id`` (needs network and a token)."""
        from huggingface_hub import HfApi

        api = HfApi(token=token)
        api.create_repo(repo_id, private=private, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            self.save_pretrained(tmp)
            info = api.upload_folder(repo_id=repo_id, folder_path=tmp, commit_message=commit_message)
        return str(info)
