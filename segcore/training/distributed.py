"""torchrun / DistributedDataParallel set-up for `segloop-cli train`.

torchrun sets WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR and MASTER_PORT; init_from_env() turns
them into a process group (gloo on CPU, nccl when CUDA is used) and is a no-op without them.
The Trainer notices an initialised group by itself (DistributedSampler, DDP, rank 0 decides).
"""

from __future__ import annotations

import hashlib
import os

import torch
from torch import nn


def init_from_env(device: str = "auto") -> tuple[int, int]:
    """(rank, world_size); initialises torch.distributed when WORLD_SIZE > 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    if not torch.distributed.is_initialized():
        use_cuda = torch.cuda.is_available() and device in ("auto", "cuda") or device.startswith("cuda")
        if use_cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        torch.distributed.init_process_group(backend="nccl" if use_cuda else "gloo")
    return torch.distributed.get_rank(), torch.distributed.get_world_size()


def cleanup() -> None:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def state_checksum(model: nn.Module) -> str:
    """SHA-256 over every parameter and buffer (name, dtype, bytes) in state_dict order."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(str(tensor.dtype).encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()
