"""Which torch device to run on: the one ``resolve_device`` (Predictor, Trainer, CLI) and the
label the app shows for it."""

from __future__ import annotations

import torch


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """"auto" → cuda if available else cpu; anything else is passed to torch.device."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def device_label(device: str | torch.device = "auto") -> str:
    """"CUDA: <GPU name>" or "CPU", for the status bar."""
    d = resolve_device(device)
    if d.type == "cuda":
        return f"CUDA: {torch.cuda.get_device_name(d.index or 0)}"
    return "CPU"
