"""The checkpoints of an adversarial run: `latest` for resume, the end of every RL stage (resume from a given stage),
and the best one by the seed's rule, each a checksummed harness checkpoint (harness/checkpoint.py).

Layout under the experiment's `checkpoints/`:
    step-NNNNNNN.pt + manifest.json      the newest two (resume; `Testbed.load_model`)
    stage-<i>/step-NNNNNNN.pt            the state at the end of RL stage i (stage-0: the end of SFT, before RL)
    best/step-NNNNNNN.pt + best.yaml     the state with the highest 0.7 x generator reward + 0.3 x test validity on
                                         the val problems (DESIGN.md §8: the seed's rule), and its scores
A state holds the generator (`model`, what `Testbed.load_model` reads), the discriminator and both frozen SFT
references under their own keys, every optimizer (SFT and RL of both roles), every RNG, the step, the stage and
phase, the run's counters and config (the kit's `checkpoint_state`), and the run's extras (`adversarial`).
Every read is verified against its sha256; a damaged file is a one-line `CheckpointError` naming it and the fix.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from autoresearch.errors import CheckpointError
from autoresearch.harness.atomic import atomic_write_yaml
from autoresearch.harness.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint

__all__ = ["CheckpointManager", "best_score", "BEST_WEIGHTS"]

BEST_WEIGHTS = (0.7, 0.3)
"""(generator reward, test validity) weights of the best-checkpoint score: the seed's rule (DESIGN.md §8)."""


def best_score(gen_reward: float, validity: float) -> float:
    """0.7 x generator reward + 0.3 x test validity; a NaN part (no signal, e.g. no discriminator test) counts 0."""
    g = gen_reward if math.isfinite(gen_reward) else 0.0
    v = validity if math.isfinite(validity) else 0.0
    return BEST_WEIGHTS[0] * g + BEST_WEIGHTS[1] * v


class CheckpointManager:
    """Latest, stage-end and best checkpoints of one experiment's `checkpoints/` folder."""

    def __init__(self, directory: str | Path, keep: int = 2) -> None:
        self.directory = Path(directory)
        self.keep = keep

    @property
    def best_dir(self) -> Path:
        return self.directory / "best"

    def stage_dir(self, stage: int) -> Path:
        return self.directory / f"stage-{stage}"

    # --- latest (resume) --------------------------------------------------------------------------------------

    def save(self, step: int, state: dict[str, Any]) -> Path:
        """The resumable checkpoint of `step` (the newest `keep` are kept)."""
        return save_checkpoint(self.directory, step, state, keep=self.keep)

    def latest(self) -> Path | None:
        """The newest checkpoint listed in the manifest, or None."""
        return latest_checkpoint(self.directory)

    def load_latest(self, map_location: str = "cpu") -> dict[str, Any]:
        """The newest verified state; a one-line CheckpointError when there is none or it is damaged."""
        path = self.latest()
        if path is None:
            raise CheckpointError(f"{self.directory} holds no checkpoint; train the experiment first")
        return load_checkpoint(path, map_location=map_location)

    # --- stage ends (resume from a given stage) -----------------------------------------------------------------

    def save_stage_end(self, stage: int, step: int, state: dict[str, Any]) -> Path:
        """The state at the end of RL stage `stage` (0 = the end of SFT), the one a resume from stage+1 starts from."""
        return save_checkpoint(self.stage_dir(stage), step, {**state, "stage_end": stage}, keep=1)

    def stages_saved(self) -> list[int]:
        """Stage indices whose end state is saved, in order."""
        out = []
        for d in self.directory.glob("stage-*"):
            suffix = d.name.split("-", 1)[1]
            if suffix.isdigit() and latest_checkpoint(d) is not None:
                out.append(int(suffix))
        return sorted(out)

    def load_stage_start(self, stage: int, map_location: str = "cpu") -> dict[str, Any]:
        """The state a run resumed at RL stage `stage` (1-based) starts from: the end of stage `stage` - 1."""
        if stage < 1:
            raise CheckpointError(f"resume stage must be >= 1 (the first RL stage), got {stage}; use 1 to redo all of RL")
        path = latest_checkpoint(self.stage_dir(stage - 1))
        if path is None:
            have = ", ".join(str(s + 1) for s in self.stages_saved()) or "none"
            what = "the end of SFT" if stage == 1 else f"the end of stage {stage - 1}"
            raise CheckpointError(f"no checkpoint of {what} in {self.stage_dir(stage - 1)} to resume stage {stage} "
                                  f"from (stages that can be resumed: {have}); pick one of them or resume the latest")
        return load_checkpoint(path, map_location=map_location)

    # --- best ---------------------------------------------------------------------------------------------------

    def best_info(self) -> dict[str, Any] | None:
        """best.yaml (score, gen_reward, validity, step, stage) of the best checkpoint, or None."""
        path = self.best_dir / "best.yaml"
        if not path.is_file():
            return None
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as e:
            raise CheckpointError(f"{path} is damaged ({type(e).__name__}); delete it (the next stage end rewrites "
                                  "it) or delete the whole best/ folder") from None
        if not isinstance(data, dict) or not isinstance(data.get("score"), (int, float)):
            raise CheckpointError(f"{path} is damaged (no numeric `score`); delete the best/ folder")
        return data

    def consider_best(self, step: int, state: dict[str, Any], *, gen_reward: float, validity: float,
                      stage: int, previous: float | None) -> float | None:
        """Save `state` as the best checkpoint when its score beats `previous` (None: nothing saved yet; ties keep
        the earlier one); returns the new best score, or None when it did not improve. `previous` comes from the
        run's own state, not from the folder, so a resumed run takes the same decisions."""
        score = best_score(gen_reward, validity)
        if previous is not None and not score > previous:
            return None
        save_checkpoint(self.best_dir, step, {**state, "best_score": score}, keep=1)
        atomic_write_yaml(self.best_dir / "best.yaml", {
            "score": round(score, 6), "gen_reward": _num(gen_reward), "validity": _num(validity), "step": step,
            "stage": stage, "rule": "0.7 * gen_reward + 0.3 * validity on the val problems"})
        return score

    def load_best(self, map_location: str = "cpu") -> dict[str, Any]:
        """The best checkpoint's verified state; a one-line CheckpointError when there is none or it is damaged."""
        path = latest_checkpoint(self.best_dir)
        if path is None:
            raise CheckpointError(f"{self.best_dir} holds no best checkpoint (a run saves one at the end of SFT and of "
                                  "each RL stage, when eval.val_problems > 0); use the latest checkpoint instead")
        return load_checkpoint(path, map_location=map_location)


def _num(x: float) -> float | None:
    return round(float(x), 6) if math.isfinite(x) else None
