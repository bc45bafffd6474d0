"""Multi-process data-parallel training (torch DistributedDataParallel) for the training loops, and the launcher
that starts N processes of a command under torchrun (`torch.distributed.run`).

Process boundary: `launch` runs in the process a user started (the CLI's `--nproc N`, or a study's trial child);
it becomes torchrun's agent and starts N rank processes of the same command. Every other function runs inside a
rank. A rank knows it is one from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT), so the
same code also runs when a user launches `torchrun --nproc_per_node N -m autoresearch train ...` directly.

What a distributed run means (the same as a single-process run of the same config):
- `train.batch_size` stays the GLOBAL batch: each of the W ranks computes the rows `rank*B/W .. (rank+1)*B/W - 1`
  of every global batch (`local_rows`; B must be divisible by W), so a step sees the same tokens as one process
  and `train_tokens`, `tokens_per_step` and the schedule are unchanged. DDP averages the gradients over ranks —
  the mean of W equal-sized row means is the global mean, so only floating-point rounding differs.
- Rank 0 alone writes the experiment (config.yaml, log.jsonl, results.yaml, checkpoints, the lock); the other
  ranks only read a checkpoint to resume. The logged loss and the step time are averaged over ranks
  (`mean_over_ranks`), so every rank takes the same divergence and time-budget decisions.
- Backend: gloo for CPU tensors, NCCL for CUDA tensors (one group serves both); a CUDA rank uses `cuda:LOCAL_RANK`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from autoresearch.errors import ConfigError, DistributedError

__all__ = ["launched", "init", "rank", "world_size", "is_main", "local_rows", "rows_of_rank", "place", "wrap",
           "accumulate", "mean_over_ranks", "broadcast_object", "barrier", "teardown", "launch", "python_module_cmd"]

TIMEOUT = timedelta(hours=2)
"""How long a collective waits for a slow rank: rank 0 alone runs the evaluations (pass@k in the sandbox can take
long) while the others wait at the next step's all-reduce. A rank that dies is noticed at once (its sockets close)
and torchrun's agent stops the rest, so this bounds only a rank that hangs."""


def launched() -> bool:
    """This process is one rank of several started by torchrun (WORLD_SIZE > 1 in the environment)."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1) > 1


def init() -> None:
    """Join the process group torchrun's environment describes (idempotent; nothing in a single process)."""
    if not launched() or dist.is_initialized():
        return
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        backend = "cpu:gloo,cuda:nccl"
    else:
        backend = "gloo"
    dist.init_process_group(backend=backend, timeout=TIMEOUT)


def rank() -> int:
    """This process's global rank: torchrun's RANK (also before `init`), 0 in a single process."""
    if dist.is_initialized():
        return dist.get_rank()
    return int(os.environ.get("RANK", "0") or 0) if launched() else 0


def world_size() -> int:
    """The number of ranks: torchrun's WORLD_SIZE (also before `init`), 1 in a single process."""
    if dist.is_initialized():
        return dist.get_world_size()
    return int(os.environ["WORLD_SIZE"]) if launched() else 1


def is_main() -> bool:
    """Rank 0 (or a single process): the one that writes the experiment, prints and evaluates."""
    return rank() == 0


def local_rows(batch_size: int, key: str = "train.batch_size") -> int:
    """This rank's rows of a global batch of `batch_size`; refused in one line unless it divides evenly."""
    world = world_size()
    if batch_size % world:
        raise ConfigError(f"`{key}` is the global batch and must be divisible by the number of processes "
                          f"({world}), got {batch_size}; use {key}={max(world, batch_size // world * world)} or "
                          f"another --nproc")
    return batch_size // world


def rows_of_rank(x: torch.Tensor) -> torch.Tensor:
    """This rank's contiguous slice of the rows of a global batch `x` (see `local_rows`)."""
    n = local_rows(x.shape[0])
    return x[rank() * n:(rank() + 1) * n]


def place(device: torch.device) -> torch.device:
    """A rank's own CUDA device (`cuda:LOCAL_RANK`) when the run resolved to plain `cuda`; `device` otherwise."""
    if device.type == "cuda" and device.index is None and dist.is_initialized():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def wrap(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """`model` in DistributedDataParallel when there are several ranks (it broadcasts rank 0's weights, then
    averages gradients during backward); `model` itself in a single process."""
    if world_size() == 1:
        return model
    init()
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


@contextlib.contextmanager
def accumulate(model: torch.nn.Module, last: bool) -> Iterator[None]:
    """Around a micro-batch's backward: gradients are all-reduced only on the `last` micro-batch of a step
    (DDP's no_sync), so gradient accumulation costs one all-reduce per optimizer step."""
    ddp = getattr(model, "_orig_mod", model)  # a torch.compile'd DDP module
    if last or not hasattr(ddp, "no_sync"):
        yield
    else:
        with ddp.no_sync():
            yield


def mean_over_ranks(*values: float) -> tuple[float, ...]:
    """The mean of each value over the ranks (one all-reduce), identical on every rank; unchanged in one process."""
    if world_size() == 1:
        return values
    init()
    t = torch.tensor(values, dtype=torch.float64)  # a CPU tensor: the group's gloo half serves it on any device
    dist.all_reduce(t)
    return tuple(v / world_size() for v in t.tolist())


def broadcast_object(obj: Any) -> Any:
    """Rank 0's `obj` on every rank (pickled); `obj` itself in one process."""
    if world_size() == 1:
        return obj
    init()
    box = [obj]
    dist.broadcast_object_list(box, src=0, device=torch.device("cpu"))
    return box[0]


def barrier() -> None:
    if world_size() > 1:
        init()
        dist.barrier()


def teardown() -> None:
    """Leave the process group (idempotent); a rank that raised leaves too, so torchrun sees its exit code."""
    if dist.is_initialized():
        dist.destroy_process_group()


# --- the launcher (runs in the process the user started, not in a rank) -------------------------------------------


def launch(nproc: int, cmd: Sequence[str], *, resume_hint: str = "") -> None:
    """Run `cmd` (a program and its arguments) as `nproc` ranks on this machine under torchrun's agent and wait.

    A failed rank stops the others (torchrun) and raises DistributedError naming the rank, how it ended and
    `resume_hint`; its `killed` is True when a rank died of a signal. The ranks inherit this process's environment
    (OMP_NUM_THREADS defaults to 1 per rank) and run in sessions of their own (torchrun's), so whoever must be able
    to kill them makes them die with their parent (the trial child does: PR_SET_PDEATHSIG)."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser
    from torch.distributed.run import run as torchrun

    if nproc < 1:
        raise ConfigError(f"--nproc must be >= 1, got {nproc}; use 1 for a single process")
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # else torchrun sets it and prints a banner about it
    args = get_args_parser().parse_args(["--standalone", "--nnodes=1", f"--nproc_per_node={nproc}",
                                         "--max_restarts=0", "--monitor_interval=0.2", "--no_python", *cmd])
    import logging

    logging.getLogger("torch.distributed.elastic").setLevel(logging.ERROR)  # its own banners, not errors
    from torch.distributed.elastic.multiprocessing.api import SignalException

    try:
        torchrun(args)
    except ChildFailedError as e:
        err = DistributedError(_failure_line(e, nproc, resume_hint))
        err.killed = any(f.exitcode < 0 for f in e.failures.values())  # type: ignore[attr-defined]
        raise err from None
    except (SignalException, KeyboardInterrupt) as e:  # Ctrl-C / SIGTERM of the agent: torchrun stopped the ranks
        why = f"got {signal.Signals(e.sigval).name}" if isinstance(e, SignalException) else "was interrupted"
        err = DistributedError(f"the {nproc} training processes stopped: the launcher {why}"
                               + (f"; {resume_hint}" if resume_hint else ""))
        err.killed = True  # type: ignore[attr-defined]
        raise err from None


def _failure_line(e: Any, nproc: int, resume_hint: str) -> str:
    """One line about the rank that failed first: a rank killed by a signal is the cause (the others then fail at
    their next collective), else the earliest failure."""
    failures = e.failures
    killed = [r for r, f in failures.items() if f.exitcode < 0]
    r = min(killed or failures, key=lambda k: failures[k].timestamp)
    code = failures[r].exitcode
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else f"signal {-code}"
        how = f"was killed by {name}" + (" (out of memory, or killed from outside)" if -code == 9 else "")
    else:
        how = f"exited with code {code}"
    others = sorted(set(failures) - {r})
    also = f" (then rank{'s' if len(others) > 1 else ''} {', '.join(map(str, others))} stopped)" if others else ""
    return f"rank {r} of {nproc} {how}{also}" + (f"; {resume_hint}" if resume_hint else "")


def python_module_cmd(module: str, argv: Sequence[str]) -> list[str]:
    """The command that runs `python -m module argv...` with this interpreter (for `launch`)."""
    return [sys.executable, "-m", module, *argv]
