"""A `Sampler` over a trained experiment of any testbed: `get_sampler("exp-NNN")`, what `eval-code --model` uses.

The spec `exp-NNN` (or a path to an experiment folder) is opened in the registry (`$AUTORESEARCH_EXPERIMENTS`,
default `experiments/`), its testbed is read from config.yaml (`Experiment.testbed()`), and the model comes back
through the contract, `get_testbed(name).load_model(exp)`: no testbed is named here, so a user testbed given as
`path/file.py:Class` samples the same way. Decoding is `testbeds.common.generate.ModelSampler` (KV-cached, eot and
stop sequences), in this process.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from autoresearch.errors import RegistryError
from autoresearch.harness.registry import open_experiment
from autoresearch.harness.samplers import Sampler, register_sampler_factory
from autoresearch.harness.settings import load_settings
from autoresearch.testbeds.base import LoadedModel, get_testbed
from autoresearch.testbeds.common.generate import ModelSampler

__all__ = ["ExperimentSampler", "register_experiment_sampler"]


class ExperimentSampler(Sampler):
    """A `Sampler` over the latest checkpoint of a training experiment (any testbed with `load_model`)."""

    def __init__(self, spec: str, root: str | Path | None = None, device: str = "cpu") -> None:
        self.exp = open_experiment(spec, root or load_settings().experiments_root)
        testbed = self.exp.testbed()
        if testbed is None:
            raise RegistryError(f"{self.exp.id} is an eval-code run, not a trained model; pass the exp-NNN of a "
                                "training run (`autoresearch ls` shows the testbed of each)")
        self.loaded: LoadedModel = get_testbed(testbed).load_model(self.exp, device=device)
        self._inner = ModelSampler(self.loaded.model, self.loaded.tokenizer)

    @property
    def tokens_per_s(self) -> float:
        return self._inner.tokens_per_s

    def generate(
        self,
        prompts: list[str],
        n: int = 1,
        temperature: float = 0.8,
        top_p: float = 0.95,
        max_tokens: int = 512,
        stop: Sequence[str] | None = None,
    ) -> list[list[str]]:
        return self._inner.generate(list(prompts), n=n, temperature=temperature, top_p=top_p, max_tokens=max_tokens,
                                    stop=stop)


def register_experiment_sampler() -> None:
    """Make `get_sampler("exp-NNN")` load that experiment's model (the harness cannot import testbeds itself)."""
    register_sampler_factory("exp-", ExperimentSampler)
