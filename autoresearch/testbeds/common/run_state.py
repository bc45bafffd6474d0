"""What a training run carries from step to step and across a resume: the counters every logged step reports (step,
tokens, training seconds, throughput), the first loss that divergence is measured against, the precision the run
computes in, and how it ended (`status`, `error`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from autoresearch.harness.metrics import Throughput, is_diverged
from autoresearch.harness.precision import PrecisionChoice

__all__ = ["RunState"]


@dataclass
class RunState:
    """A run's counters; `start_run` makes it, `resume_run` restores it, `checkpoint_state` saves it."""

    precision: PrecisionChoice
    """Resolved once per run (harness/precision.py); a resumed run keeps its checkpoint's."""
    step: int = 0
    tokens: int = 0
    first_loss: float | None = None
    train_seconds: float = 0.0
    """Training time only: evaluation and checkpointing are not counted."""
    thr: Throughput = field(default_factory=Throughput)
    status: str = "ok"
    """`ok` until the run diverges (`diverged`)."""
    error: str | None = None

    def out_of_time(self, max_seconds: float) -> bool:
        """The optional wall-clock budget of training (`train.max_seconds`, 0 = none) is used up."""
        return bool(max_seconds) and self.train_seconds >= max_seconds

    def advance(self, loss: float, tokens: int, seconds: float, *, timed: bool = True) -> None:
        """Count one optimizer step of `tokens` that took `seconds`; `timed=False` keeps it out of tokens/s."""
        self.step += 1
        self.tokens += tokens
        self.train_seconds += seconds
        if timed:
            self.thr.add(tokens, seconds)
        if self.first_loss is None:
            self.first_loss = loss

    def check_diverged(self, loss: float, factor: float) -> bool:
        """NaN/inf or `loss` above `factor` x the first loss: mark the run diverged (status and error) and say so."""
        if not is_diverged(loss, self.first_loss, factor):
            return False
        self.status = "diverged"
        self.error = f"loss {loss:.4g} at step {self.step} (first loss {self.first_loss:.4g}, limit x{factor})"
        return True
