"""A policy = one language model in one role (generator or discriminator): sampling, log-probs with gradients, and
the role methods that turn problems into prompts and samples into sanitised chains, tests and critiques.

Two backends share this interface: `LMPolicy` over the kit's GPT / causal HRM (this file; sampling through the kit's
KV-cached `generate`) and `HFPolicy` over a transformers causal LM (`hf_policy.py`). The RL update (`grpo.py`) only
needs `sample` and `sequence_logprobs`; the trainer, metrics and inference engine use the role methods.

Randomness: sampling draws from torch's global RNG (or an explicit `torch.Generator`), nothing else, so a run seeded
with `torch.manual_seed` and resumed with the saved RNG state samples the same tokens on CPU.

Log-probs: `sequence_logprobs` re-runs the sampled ids teacher-forced in ONE forward with gradients (the seed project
took them under no_grad and summed them, so its PPO step had nothing to differentiate; DESIGN.md §8). Rows are
`prompt_ids + ids`, right-padded (a causal model never attends to later pad tokens, so no mask is needed), and the
result is answer-aligned: logp[b, t] is the log-probability of samples[b].ids[t].
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from autoresearch.errors import ConfigError
from autoresearch.testbeds.adversarial.config import AdversarialConfig
from autoresearch.testbeds.adversarial.problems import Problem
from autoresearch.testbeds.adversarial.stages import (
    STAGES,
    Stage,
    code_of,
    critique_prompt,
    generator_prompt,
    parse_chain,
    render_chain,
    tests_prompt,
)
from autoresearch.testbeds.common.generate import context_length, generate
from autoresearch.testbeds.common.gpt import GPT
from autoresearch.testbeds.common.hrm import HRM

__all__ = [
    "Sample",
    "Policy",
    "LMPolicy",
    "Role",
    "ROLES",
    "build_model",
    "build_policy",
    "sanitize_continuation",
    "sanitize_tests",
    "sanitize_critique",
    "MAX_TEXT_CHARS",
]

Role = Literal["generator", "discriminator"]
ROLES: tuple[str, ...] = ("generator", "discriminator")
MAX_TEXT_CHARS = 4000
"""Cap of any sanitised answer (a 256-token answer of a byte-level BPE is well below it)."""

_ANY_TAG = re.compile(r"^###", re.MULTILINE)


@dataclass
class Sample:
    """One sampled answer to one prompt."""

    prompt: str
    prompt_ids: list[int]
    """Token ids the model was conditioned on: the prompt's, cropped on the left where prompt + max_new_tokens
    exceeded the context (so log-probs are taken under exactly the sampling context)."""
    ids: list[int]
    """Sampled ids, the eot id included when the model produced it: exactly the tokens the RL loss is taken on."""
    text: str
    """Decoded answer, cut at eot (role methods sanitise it further)."""
    truncated: bool
    """The answer hit max_new_tokens without eot."""


# --- sanitisation ------------------------------------------------------------------------------------------------


def _cap(text: str) -> str:
    return text[:MAX_TEXT_CHARS]


def _cut_at_unexpected_tag(text: str, expected: Sequence[str]) -> str:
    """Cut before the first `###` line that is not one of `expected` (tag lines, in order) later than the last one
    seen: a repeated, out-of-order or foreign tag (`### tests`, `### feedback`, `### Step 1`) ends the answer."""
    order = [e.strip() for e in expected]
    pos = 0
    for m in _ANY_TAG.finditer(text):
        end = text.find("\n", m.start())
        line = text[m.start():end if end >= 0 else len(text)].strip()
        if line in order[pos:]:
            pos = order.index(line, pos) + 1
            continue
        return text[:m.start()]
    return text


def sanitize_continuation(text: str, expected_tags: Sequence[str]) -> str:
    """A generator continuation: cut at the first `###` line that is not a later stage's tag (in order), trailing
    blanks stripped, one final newline (as the canonical sections have), length capped. Leading indentation is kept
    (the code stage is a function body)."""
    body = _cap(_cut_at_unexpected_tag(text, expected_tags)).rstrip()
    return body + "\n" if body else ""


def sanitize_tests(text: str) -> str:
    """A discriminator's tests block: cut at the first `###` line, trailing blanks stripped, capped. Which lines
    count as tests is the reward's business (`rewards.parse_tests`), not this function's."""
    m = _ANY_TAG.search(text)
    body = text[:m.start()] if m else text
    return _cap(body.strip("\n").rstrip())


def sanitize_critique(text: str) -> str:
    """A critique: cut at the first `###` line, stripped, capped."""
    m = _ANY_TAG.search(text)
    return _cap((text[:m.start()] if m else text).strip())


# --- the interface -----------------------------------------------------------------------------------------------


class Policy(ABC):
    """One model in one role. Backends implement `sample` and `_logits`; everything else is shared."""

    model: nn.Module
    tokenizer: Any
    device: torch.device
    role: str
    max_new_tokens: int
    """Default answer length of the role methods (generator: rl.max_new_tokens; discriminator: rl.max_test_tokens)."""

    # -- backend --

    @abstractmethod
    def sample(self, prompts: Sequence[str], n: int, *, temperature: float = 1.0, top_p: float = 1.0,
               max_new_tokens: int | None = None, greedy: bool = False,
               generator: torch.Generator | None = None) -> list[list[Sample]]:
        """n samples per prompt (greedy: n copies of the argmax answer), in prompt order."""

    @abstractmethod
    def _logits(self, x: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Float logits [B, T, V] of right-padded ids x [B, T] (mask: 1 = real token)."""

    @abstractmethod
    def context_length(self) -> int | None:
        """Longest sequence the model takes (None: unbounded)."""

    @property
    def eot_id(self) -> int | None:
        return getattr(self.tokenizer, "eot_id", None)

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text))

    def decode(self, ids: Sequence[int]) -> str:
        return str(self.tokenizer.decode(list(ids)))

    # -- log-probs --

    def sequence_logprobs(self, samples: Sequence[Sample], *, temperature: float = 1.0
                          ) -> tuple[torch.Tensor, torch.Tensor]:
        """(logp [B, T], mask [B, T]) of each sample's ids under the model, with gradients; T = longest answer.

        One teacher-forced forward over right-padded `prompt_ids + ids`; a row longer than the context keeps its last
        `context + 1` tokens (the prompt is cropped from the left). `temperature` divides the logits (1 = the model's
        own distribution, which the sampler draws from at temperature 1).
        """
        if not samples:
            raise ConfigError("sequence_logprobs got no samples; pass at least one Sample")
        if temperature <= 0:
            raise ConfigError(f"sequence_logprobs `temperature` must be > 0, got {temperature}; use 1.0")
        ctx = self.context_length()
        rows: list[list[int]] = []
        n_ans: list[int] = []
        for s in samples:
            seq = list(s.prompt_ids) + list(s.ids)
            if not s.prompt_ids:
                raise ConfigError("a Sample has no prompt tokens; a log-prob needs a token before the answer")
            if ctx is not None and len(s.ids) > ctx:
                raise ConfigError(f"a sampled answer of {len(s.ids)} tokens exceeds the model's context {ctx}; "
                                  f"sample with max_new_tokens < {ctx}")
            if ctx is not None and len(seq) > ctx + 1:
                seq = seq[len(seq) - (ctx + 1):]
            rows.append(seq)
            n_ans.append(len(s.ids))
        L = max(len(r) for r in rows) - 1
        T = max(max(n_ans), 1)
        pad = self.eot_id if self.eot_id is not None else 0
        x = torch.full((len(rows), L), pad, dtype=torch.long)
        y = torch.full((len(rows), L), pad, dtype=torch.long)
        am = torch.zeros((len(rows), L), dtype=torch.long)
        # Answer position t of row b sits at input index start_b + t, start_b = len(row) - 1 - n_ans.
        gather_idx = torch.zeros((len(rows), T), dtype=torch.long)
        mask = torch.zeros((len(rows), T), dtype=torch.bool)
        for b, (r, k) in enumerate(zip(rows, n_ans, strict=True)):
            m = len(r) - 1
            x[b, :m] = torch.tensor(r[:-1])
            y[b, :m] = torch.tensor(r[1:])
            am[b, :m] = 1
            start = m - k
            gather_idx[b, :k] = torch.arange(start, m)
            mask[b, :k] = True
        x, y, am = x.to(self.device), y.to(self.device), am.to(self.device)
        gather_idx, mask = gather_idx.to(self.device), mask.to(self.device)
        logits = self._logits(x, am)
        # Only answer positions need a softmax: gather them first ([B, T, V] instead of [B, L, V]).
        V = logits.shape[-1]
        ans_logits = logits.gather(1, gather_idx[:, :, None].expand(-1, -1, V)).float()
        if temperature != 1.0:
            ans_logits = ans_logits / temperature
        targets = y.gather(1, gather_idx)
        logp = F.log_softmax(ans_logits, dim=-1).gather(-1, targets[:, :, None]).squeeze(-1)
        return logp * mask, mask

    # -- role methods (prompts from stages.py) --

    def sample_texts(self, prompts: Sequence[str], n: int, temperature: float, max_new_tokens: int | None,
                     top_p: float = 1.0) -> list[list[Sample]]:
        """`sample`, greedy when temperature == 0."""
        return self.sample(prompts, n, temperature=max(temperature, 1e-6), top_p=top_p,
                           max_new_tokens=max_new_tokens, greedy=temperature <= 0)

    def continuation_chain(self, text: str, prefix_chain: Mapping[str, str] | None, stage: Stage,
                           stages: Sequence[Stage]) -> dict[str, str]:
        """The full chain of a generator continuation that starts after `stage`'s tag line."""
        prefix = dict(prefix_chain or {})
        before = [s for s in stages if s.index < stage.index]
        head = render_chain({s.name: prefix.get(s.name, "") for s in before}, before) if before else ""
        if head and not head.endswith("\n"):
            head += "\n"
        later = [s for s in stages if s.index > stage.index]
        text = sanitize_continuation(text, [s.tag for s in later])
        return parse_chain(head + stage.tag + "\n" + text, stages)

    def sample_chains(self, problems: Sequence[Problem], prefix_chains: Sequence[Mapping[str, str] | None],
                      stage: Stage, stages: Sequence[Stage], n: int, *, temperature: float, top_p: float = 1.0,
                      max_new_tokens: int | None = None, feedback: Sequence[str] | None = None
                      ) -> list[list[tuple[Sample, dict[str, str]]]]:
        """n continuations per problem from `stage` to the code, each with its parsed full chain (RL and metrics)."""
        fb = list(feedback) if feedback is not None else [""] * len(problems)
        prompts = [generator_prompt(p, dict(c or {}), stage, f) for p, c, f in zip(problems, prefix_chains, fb,
                                                                                   strict=True)]
        out = self.sample_texts(prompts, n, temperature, max_new_tokens, top_p)
        return [[(s, self.continuation_chain(s.text, c, stage, stages)) for s in row]
                for row, c in zip(out, prefix_chains, strict=True)]

    def generate_stage_output(self, problem: Problem, prefix_chain: Mapping[str, str] | None, stage: Stage,
                              n: int = 1, temperature: float = 0.0, stages: Sequence[Stage] | None = None,
                              max_new_tokens: int | None = None) -> list[str]:
        """The text of `stage` alone, continuing the given prefix chain (n samples; greedy at temperature 0)."""
        stages = tuple(stages) if stages is not None else STAGES
        rows = self.sample_chains([problem], [prefix_chain], stage, stages, n, temperature=temperature,
                                  max_new_tokens=max_new_tokens)[0]
        return [chain.get(stage.name, "") for _, chain in rows]

    def generate_chain(self, problem: Problem, stages: Sequence[Stage], n: int = 1, temperature: float = 0.0,
                       feedback: str = "", max_new_tokens: int | None = None) -> list[dict[str, str]]:
        """n full chains (stage name -> text) from the first stage of `stages` to the code."""
        rows = self.sample_chains([problem], [None], stages[0], stages, n, temperature=temperature,
                                  max_new_tokens=max_new_tokens, feedback=[feedback])[0]
        return [chain for _, chain in rows]

    def generate_code(self, problem: Problem, n: int = 1, temperature: float = 0.0,
                      stages: Sequence[Stage] | None = None, feedback: str = "",
                      max_new_tokens: int | None = None) -> list[str]:
        """n completions (the code stage of a full chain; `problem.program(completion)` is the program)."""
        chains = self.generate_chain(problem, tuple(stages) if stages is not None else STAGES, n, temperature,
                                     feedback, max_new_tokens)
        return [code_of(c) for c in chains]

    def sample_tests(self, problems: Sequence[Problem], n: int, *, temperature: float, top_p: float = 1.0,
                     max_new_tokens: int | None = None, feedback: Sequence[str] | None = None
                     ) -> list[list[tuple[Sample, str]]]:
        """n tests blocks per problem, each with its sanitised text (RL and metrics)."""
        fb = list(feedback) if feedback is not None else [""] * len(problems)
        prompts = [tests_prompt(p, f) for p, f in zip(problems, fb, strict=True)]
        out = self.sample_texts(prompts, n, temperature, max_new_tokens, top_p)
        return [[(s, sanitize_tests(s.text)) for s in row] for row in out]

    def generate_tests(self, problem: Problem, n: int = 1, temperature: float = 0.0, feedback: str = "",
                       max_new_tokens: int | None = None) -> list[str]:
        """n tests blocks (assert lines; the reward parses and validates them)."""
        rows = self.sample_tests([problem], n, temperature=temperature, max_new_tokens=max_new_tokens,
                                 feedback=[feedback])[0]
        return [t for _, t in rows]

    def generate_critique(self, problem: Problem, chain: Mapping[str, str], stage: Stage,
                          max_new_tokens: int | None = None) -> str:
        """The greedy critique of `chain` through `stage` (SFT target: "ok" or "wrong")."""
        s = self.sample_texts([critique_prompt(problem, dict(chain), stage)], 1, 0.0,
                              max_new_tokens or min(16, self.max_new_tokens))[0][0]
        return sanitize_critique(s.text)

    # -- module plumbing --

    def parameters(self) -> list[nn.Parameter]:
        return list(self.model.parameters())

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.model.parameters() if p.requires_grad]

    def state_dict(self) -> dict[str, Any]:
        return self.model.state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.model.load_state_dict(state)

    def train(self) -> Policy:
        self.model.train()
        return self

    def eval(self) -> Policy:
        self.model.eval()
        return self


# --- our models --------------------------------------------------------------------------------------------------


class LMPolicy(Policy):
    """The kit's GPT or causal HRM (anything with forward(x) -> logits and the KV-cache protocol of generate.py)."""

    def __init__(self, model: nn.Module, tokenizer: Any, device: torch.device | str = "cpu", *,
                 role: str = "generator", max_new_tokens: int = 128) -> None:
        if role not in ROLES:
            raise ConfigError(f"policy role must be one of {', '.join(ROLES)}, got {role!r}")
        self.device = torch.device(device)
        self.model = model.to(self.device)
        self.tokenizer = tokenizer
        self.role = role
        self.max_new_tokens = max_new_tokens

    def context_length(self) -> int | None:
        return context_length(self.model)

    def _logits(self, x: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def sample(self, prompts: Sequence[str], n: int, *, temperature: float = 1.0, top_p: float = 1.0,
               max_new_tokens: int | None = None, greedy: bool = False,
               generator: torch.Generator | None = None) -> list[list[Sample]]:
        if n < 1:
            raise ConfigError(f"samples per prompt `n` must be >= 1, got {n}; use e.g. 4")
        if not prompts:
            return []
        max_new = max_new_tokens or self.max_new_tokens
        eot = self.eot_id
        encoded = [self.encode(p) or ([eot] if eot is not None else []) for p in prompts]
        ctx = self.context_length()
        if ctx is not None and max_new < ctx:  # generate() crops the same way; max_new >= ctx is its error
            encoded = [ids[max(0, len(ids) - (ctx - max_new)):] for ids in encoded]
        reps = 1 if greedy else n
        # All prompts x n in one call: generate batches rows of equal prompt length together.
        flat = [ids for ids in encoded for _ in range(reps)]
        res = generate(self.model, flat, max_new_tokens=max_new, temperature=0.0 if greedy else temperature,
                       top_p=top_p, eot_id=eot, generator=generator)
        out: list[list[Sample]] = []
        for i, (prompt, ids) in enumerate(zip(prompts, encoded, strict=True)):
            row: list[Sample] = []
            for j in range(reps):
                k = i * reps + j
                toks = list(res.tokens[k])
                text = self.decode(toks)
                if res.finish[k] == "eot" and eot is not None:
                    toks.append(eot)
                row.append(Sample(prompt, list(ids), toks, text, res.finish[k] == "length"))
            if greedy and n > 1:
                row = [Sample(s.prompt, s.prompt_ids, list(s.ids), s.text, s.truncated) for s in row * n]
            out.append(row)
        return out


# --- construction ------------------------------------------------------------------------------------------------


def build_model(cfg: AdversarialConfig, vocab_size: int) -> nn.Module:
    """A fresh GPT or HRM of `cfg` (init drawn from torch's current RNG); arch=hf has no such model (HFPolicy)."""
    if cfg.arch == "gpt":
        return GPT(cfg.gpt, vocab_size)
    if cfg.arch == "hrm":
        return HRM(cfg.hrm, vocab_size)
    raise ConfigError(f"build_model builds arch gpt|hrm, got arch={cfg.arch!r}; an HF model loads with build_policy")


def build_policy(cfg: AdversarialConfig, tokenizer: Any, role: str, device: torch.device | str,
                 model: nn.Module | None = None) -> Policy:
    """The policy of `role` for cfg.arch: a fresh (or the given) GPT/HRM with `tokenizer`, or the HF model of
    cfg.hf (its own tokenizer; `tokenizer` is ignored)."""
    if role not in ROLES:
        raise ConfigError(f"policy role must be one of {', '.join(ROLES)}, got {role!r}")
    max_new = cfg.rl.max_new_tokens if role == "generator" else cfg.rl.max_test_tokens
    if cfg.arch == "hf":
        from autoresearch.testbeds.adversarial.hf_policy import HFPolicy

        return HFPolicy.from_config(cfg.hf, device, role=role, max_new_tokens=max_new)
    if model is None:
        model = build_model(cfg, tokenizer.vocab_size)
    return LMPolicy(model, tokenizer, device, role=role, max_new_tokens=max_new)
