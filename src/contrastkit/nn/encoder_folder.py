"""An encoder as a folder of safetensors weights and a JSON recipe: write one, rebuild one.

``contrastkit export RUN_DIR --format safetensors`` writes this folder for a run of any
kind of data; :func:`load_encoder` rebuilds the encoder from it, in eval mode, with the
run's outputs. Nothing in the folder is pickled, so loading it runs no code from the file::

    encoder.json           {"format": "contrastkit-encoder", "encoder": NAME, "arguments": {...}, "files": {...}}
    encoder.safetensors    the encoder's state dict (parameters and persistent buffers)
    arguments.safetensors  tensor-valued constructor arguments (e.g. LightGCN's training graph), if any
    transformer/           files an encoder reads when built (a text encoder's config and tokenizer), if any

``encoder.json`` names the registered encoder (:mod:`contrastkit.nn.registry`) and the
keyword arguments it was built with, both those of the recipe and those that came from
the data (channels, image size, vocabulary, user and item counts): rebuilding is
``build_encoder(NAME, **arguments)`` followed by a strict ``load_state_dict``. It also
lists every other file with its SHA-256, so a truncated or altered file is refused by
name instead of producing silently different outputs.

An encoder that reads files when it is built (a text encoder's model directory) defines
``export_assets(directory) -> {argument: value}``: it writes those files into the folder
and returns the constructor arguments that change, a :class:`~pathlib.Path` for each
argument that names one of them (stored relative to the folder).

Example:
    >>> encoder = contrastkit.load_encoder("exported/")       # doctest: +SKIP
    >>> encoder(images).shape                                   # doctest: +SKIP
    torch.Size([8, 128])
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from contrastkit.nn.registry import build_encoder, encoder_names

FORMAT = "contrastkit-encoder"
FORMAT_VERSION = 1
CONFIG_FILE = "encoder.json"
WEIGHTS_FILE = "encoder.safetensors"
ARGUMENTS_FILE = "arguments.safetensors"

__all__ = ["CONFIG_FILE", "WEIGHTS_FILE", "load_encoder", "write_encoder_folder"]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _json_value(name: str, value: Any) -> Any:
    """``value`` as JSON (tuples become lists), or a ``ValueError`` naming the argument."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError) as error:
        raise ValueError(f"encoder argument {name!r}: expected a JSON value or a tensor to export, "
                         f"got {type(value).__name__} ({error})") from None
    return json.loads(text)


def _split_arguments(arguments: Mapping[str, Any], directory: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor],
                                                                          list[str]]:
    """``(JSON arguments, tensor arguments, names of path arguments)``; paths become relative to ``directory``."""
    plain: dict[str, Any] = {}
    tensors: dict[str, torch.Tensor] = {}
    paths: list[str] = []
    for name, value in arguments.items():
        if isinstance(value, torch.Tensor):
            tensors[name] = value.detach().cpu().clone().contiguous()
        elif isinstance(value, Path):
            relative = value.resolve().relative_to(directory.resolve())  # a file outside the folder is a bug
            plain[name] = relative.as_posix()
            paths.append(name)
        elif isinstance(value, np.ndarray):
            tensors[name] = torch.from_numpy(np.ascontiguousarray(value)).clone()
        else:
            plain[name] = _json_value(name, value)
    return plain, tensors, paths


def write_encoder_folder(
    directory: str | os.PathLike[str],
    encoder: nn.Module,
    name: str,
    arguments: Mapping[str, Any],
    *,
    source: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``encoder`` (built as ``build_encoder(name, **arguments)``) into the empty folder ``directory``.

    The caller makes the folder appear atomically (it writes into a staging folder and
    renames it, as ``contrastkit export`` does); ``encoder.json`` is written last.

    Args:
        directory: an existing, empty folder.
        encoder: the trained encoder.
        name: its registered encoder name.
        arguments: every keyword argument it was built with (the recipe's and the data's).
        source: what to record about where it came from (run, checkpoint, step, ...).

    Returns:
        ``directory``.

    Raises:
        ValueError: an unknown encoder name, or an argument that is neither JSON nor a tensor.
    """
    directory = Path(directory)
    if name not in encoder_names():
        raise ValueError(f"encoder {name!r}: expected a registered encoder ({', '.join(encoder_names())})")
    arguments = dict(arguments)
    export_assets = getattr(encoder, "export_assets", None)
    if callable(export_assets):
        arguments.update(export_assets(directory))
    plain, tensor_arguments, path_arguments = _split_arguments(arguments, directory)
    # clone(): safetensors refuses tensors that share storage (tied weights).
    weights = {key: value.detach().cpu().clone().contiguous() for key, value in encoder.state_dict().items()}
    save_file(weights, str(directory / WEIGHTS_FILE), metadata={"format": FORMAT, "encoder": name})
    if tensor_arguments:
        save_file(tensor_arguments, str(directory / ARGUMENTS_FILE), metadata={"format": FORMAT})
    files = {path.relative_to(directory).as_posix(): _sha256(path)
             for path in sorted(directory.rglob("*")) if path.is_file()}
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "encoder": name,
        "arguments": plain,
        "tensor_arguments": sorted(tensor_arguments),
        "path_arguments": sorted(path_arguments),
        "output_dim": getattr(encoder, "output_dim", None),
        "files": files,
        "source": _json_value("source", dict(source or {})),
    }
    (directory / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return directory


def _read_config(directory: Path) -> dict[str, Any]:
    path = directory / CONFIG_FILE
    if not directory.is_dir():
        raise FileNotFoundError(f"load_encoder: {directory} is not a folder (expected one written by "
                                "`contrastkit export RUN_DIR --format safetensors`)")
    if not path.is_file():
        raise FileNotFoundError(f"load_encoder: {path} is missing (expected the folder of "
                                "`contrastkit export RUN_DIR --format safetensors`)")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"load_encoder: {path} is corrupt (expected JSON: {error})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        found = config.get("format") if isinstance(config, dict) else type(config).__name__
        raise ValueError(f"load_encoder: {path}: expected format {FORMAT!r}, got {found!r}")
    if config.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"load_encoder: {path}: expected format_version {FORMAT_VERSION}, got "
                         f"{config.get('format_version')!r} (written by another contrastkit version)")
    for key, kind in (("encoder", str), ("arguments", dict), ("files", dict), ("tensor_arguments", list),
                      ("path_arguments", list)):
        if not isinstance(config.get(key), kind):
            raise ValueError(f"load_encoder: {path}: expected {key!r} to be a {kind.__name__}, "
                             f"got {type(config.get(key)).__name__}")
    return config


def _check_files(directory: Path, files: Mapping[str, str]) -> None:
    if WEIGHTS_FILE not in files:
        raise ValueError(f"load_encoder: {directory / CONFIG_FILE} lists no {WEIGHTS_FILE}")
    for relative, expected in files.items():
        path = directory / relative
        if not path.is_file():
            raise FileNotFoundError(f"load_encoder: {path} is missing (listed in {CONFIG_FILE})")
        if _sha256(path) != expected:
            raise ValueError(f"load_encoder: {path} is corrupt (its SHA-256 differs from the one in {CONFIG_FILE})")


def _load_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise ValueError(f"load_encoder: {path} is corrupt (expected a safetensors file: {error})") from None


def load_encoder(directory: str | os.PathLike[str], *, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild an encoder exported by ``contrastkit export RUN_DIR --format safetensors``.

    The encoder is built from its registered name and recorded arguments, its weights are
    loaded strictly from ``encoder.safetensors`` (no pickle), and it is returned in eval
    mode: its outputs are the run's encoder's.

    Args:
        directory: the exported folder.
        device: where to put the encoder.

    Returns:
        The encoder (an ``nn.Module`` with ``output_dim``), in eval mode.

    Raises:
        FileNotFoundError: the folder or one of its files is missing.
        ValueError: a file is corrupt or altered, or was written by another format version.

    Example:
        >>> encoder = load_encoder("exported/")                      # doctest: +SKIP
        >>> with torch.no_grad():
        ...     features = encoder(batch)                            # doctest: +SKIP
    """
    directory = Path(directory)
    config = _read_config(directory)
    _check_files(directory, config["files"])
    name = config["encoder"]
    if name not in encoder_names():
        raise ValueError(f"load_encoder: {directory / CONFIG_FILE}: encoder {name!r} is not registered here "
                         f"(registered: {', '.join(encoder_names())})")
    arguments = dict(config["arguments"])
    for key in config["path_arguments"]:
        arguments[key] = str(directory / arguments[key])
    if config["tensor_arguments"]:
        tensors = _load_tensors(directory / ARGUMENTS_FILE)
        missing = sorted(set(config["tensor_arguments"]) - set(tensors))
        if missing:
            raise ValueError(f"load_encoder: {directory / ARGUMENTS_FILE}: expected tensors {missing}, got "
                             f"{sorted(tensors)}")
        arguments.update({key: tensors[key] for key in config["tensor_arguments"]})
    try:
        encoder = build_encoder(name, **arguments)
    except TypeError as error:
        raise ValueError(f"load_encoder: encoder {name!r} cannot be built from {directory / CONFIG_FILE}: {error}") \
            from None
    weights = _load_tensors(directory / WEIGHTS_FILE)
    try:
        encoder.load_state_dict(weights, strict=True)
    except RuntimeError as error:
        first = str(error).strip().splitlines()
        detail = " ".join(first[1:3]) if len(first) > 1 else first[0] if first else ""
        raise ValueError(f"load_encoder: {directory / WEIGHTS_FILE} does not fit encoder {name!r}: "
                         f"{detail.strip()}") from None
    return encoder.to(device).eval()
