"""Freeze and unfreeze a model (or a policy's model), and the frozen reference copy the RL KL term is taken against.

Freezing turns `requires_grad` off, so a loss that involves the frozen model builds no graph through its weights and
an optimizer holding them finds no gradient to apply (torch optimizers skip parameters whose grad is None). The
previous flags are remembered per parameter, so `unfreeze` restores exactly what was there (a LoRA model keeps its
base weights frozen), and `frozen` does both around a block.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from torch import nn

__all__ = ["freeze", "unfreeze", "frozen", "is_frozen", "reference_copy"]

_SAVED = "_autoresearch_requires_grad"
P = TypeVar("P")


def _module(obj: Any) -> nn.Module:
    """The nn.Module of a module or a policy (anything with a `.model`)."""
    if isinstance(obj, nn.Module):
        return obj
    model = getattr(obj, "model", None)
    if isinstance(model, nn.Module):
        return model
    raise TypeError(f"freeze wants an nn.Module or a policy with a .model, got {type(obj).__name__}")


def freeze(obj: Any) -> None:
    """Turn off gradients of every parameter (remembering each one's flag for `unfreeze`) and drop stale grads."""
    module = _module(obj)
    if not hasattr(module, _SAVED):
        setattr(module, _SAVED, {name: p.requires_grad for name, p in module.named_parameters()})
    for p in module.parameters():
        p.requires_grad_(False)
        p.grad = None


def unfreeze(obj: Any) -> None:
    """Restore the flags saved by `freeze` (all parameters trainable if it was never frozen)."""
    module = _module(obj)
    saved: dict[str, bool] = getattr(module, _SAVED, {})
    for name, p in module.named_parameters():
        p.requires_grad_(saved.get(name, True))
    if hasattr(module, _SAVED):
        delattr(module, _SAVED)


def is_frozen(obj: Any) -> bool:
    """No parameter requires a gradient."""
    return not any(p.requires_grad for p in _module(obj).parameters())


@contextmanager
def frozen(obj: Any) -> Iterator[Any]:
    """Freeze for the duration of the block, then restore (also on an exception). Nesting is safe: an inner
    `frozen` on an already frozen model leaves it frozen."""
    module = _module(obj)
    already = hasattr(module, _SAVED)
    freeze(module)
    try:
        yield obj
    finally:
        if not already:
            unfreeze(module)


def reference_copy(policy: P) -> P:
    """A frozen deep copy of the policy's model in eval mode (the KL reference); tokenizer and settings are shared."""
    ref = copy.copy(policy)
    model = copy.deepcopy(_module(policy))
    if hasattr(model, _SAVED):
        delattr(model, _SAVED)
    freeze(model)
    model.eval()
    ref.model = model  # type: ignore[attr-defined]
    return ref
