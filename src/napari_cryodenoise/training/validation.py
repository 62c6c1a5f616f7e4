"""Validation loss: the mean per-pixel loss over a sampler's fixed validation tiles."""

from __future__ import annotations

import torch
from torch import nn

from .objective import pixel_losses
from .optim import loss_fn
from .sampling import CropSampler

__all__ = ["FINAL_TOLERANCE", "final_is_kept", "validation_loss"]

#: The final network is kept unless its validation loss is more than this share above
#: the best one (see :func:`final_is_kept`).
FINAL_TOLERANCE = 1e-3


def validation_loss(
    model: nn.Module,
    sampler: CropSampler,
    *,
    loss: str = "l2",
    device: torch.device | str = "cpu",
    batch_size: int = 8,
    mask_grid: int = 4,
    seed: int = 0,
    autocast_dtype: torch.dtype | None = None,
) -> float | None:
    """Mean per-pixel loss over every validation pixel (None without validation tiles).

    The sum of the per-pixel losses over all tiles is divided by the number of
    scored pixels, so the value does not depend on how tiles are batched.
    Noise2Noise: the network maps each tile's even half to its odd half.
    Masked: a fixed (seeded) blind-spot mask, scored at the hidden pixels.
    ``autocast_dtype`` runs the network in that precision (as training does).
    """
    if not sampler.val_tiles:
        return None
    fn = loss_fn(loss)
    device = torch.device(device)
    was_training = model.training
    model.eval()
    total = 0.0
    count = 0
    gen = torch.Generator().manual_seed(seed + 7919)
    try:
        with torch.no_grad():
            for src, tgt in sampler.val_batches(batch_size):
                src, tgt = src.to(device), tgt.to(device)
                per, mask = pixel_losses(
                    model, src, tgt, fn, masked=sampler.masked, mask_grid=mask_grid,
                    generator=gen, device=device, dtype=autocast_dtype,
                )  # fmt: skip
                if mask is None:
                    count += per.numel()
                else:
                    per = per * mask
                    count += int(mask.sum().item())
                total += float(per.double().sum().item())
    finally:
        model.train(was_training)
    return total / max(count, 1)


def final_is_kept(best: float, final: float, tolerance: float = FINAL_TOLERANCE) -> bool:
    """Whether the network at the end of the schedule is kept over the best-validated one.

    Noise2Noise validation losses are dominated by the target's noise: between good
    networks they differ by less than their own noise (1e-4 in 0.994 on the training
    benchmark), so the lowest of them picks a network at random, up to 1 dB worse
    against ground truth than the final one (measured), while a run that diverged lies
    far above. The final network (learning rate decayed) is kept unless its loss is
    more than ``tolerance`` (relative) above ``best``.
    """
    return final <= best + tolerance * abs(best)
