"""`HFPolicy`: a transformers causal LM (and its tokenizer) from a local folder as a generator or discriminator, with
optional LoRA adapters via peft — the GPU path of the adversarial testbed (extra `autoresearch[rl]`).

Same interface as `LMPolicy` (policy.py): sampling goes through `model.generate` on left-padded prompts (top_k off,
so temperature/top_p sample the model's own distribution; the draws come from torch's global RNG), and
`sequence_logprobs` is the shared teacher-forced forward with an attention mask. Dropout is switched off on load, as
TRL's GRPO does: with dropout the first PPO pass would not have ratio 1 and old/new log-probs would be noise apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from autoresearch.errors import ConfigError
from autoresearch.testbeds.adversarial.config import HFModelConfig
from autoresearch.testbeds.adversarial.policy import ROLES, Policy, Sample

__all__ = ["HFPolicy", "INSTALL_HINT"]

INSTALL_HINT = "pip install 'autoresearch[rl]'"


def _import(name: str) -> Any:
    try:
        return __import__(name)
    except ImportError:
        raise ConfigError(f"arch=hf needs the {name!r} package, which is not installed; run {INSTALL_HINT}") from None


class HFPolicy(Policy):
    """A transformers causal LM + tokenizer (optionally LoRA-wrapped) in one role."""

    def __init__(self, model: nn.Module, tokenizer: Any, device: torch.device | str = "cpu", *,
                 role: str = "generator", max_new_tokens: int = 128, batch_size: int = 64) -> None:
        if role not in ROLES:
            raise ConfigError(f"policy role must be one of {', '.join(ROLES)}, got {role!r}")
        if getattr(tokenizer, "eos_token_id", None) is None:
            raise ConfigError("the HF tokenizer has no eos token; set tokenizer.eos_token (e.g. '<|endoftext|>') "
                              "and save it again")
        self.device = torch.device(device)
        self.model = model.to(self.device)
        self.tokenizer = tokenizer
        self.role = role
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        for m in self.model.modules():
            if isinstance(m, nn.Dropout):
                m.p = 0.0

    @classmethod
    def from_config(cls, hf: HFModelConfig, device: torch.device | str, *, role: str = "generator",
                    max_new_tokens: int = 128) -> HFPolicy:
        """Load hf.model (a local folder, or a hub name when online) and wrap it in LoRA when hf.lora_r > 0."""
        transformers = _import("transformers")
        name = hf.model.strip()
        if not name:
            raise ConfigError("hf.model is empty; use --set hf.model=PATH (a folder with a causal LM and tokenizer)")
        local = Path(name).expanduser()
        if (name.startswith((".", "/", "~")) or local.exists()) and not (local / "config.json").is_file():
            raise ConfigError(f"hf.model={name!r}: no config.json there; point it at a folder written by "
                              "save_pretrained (model + tokenizer)")
        dev = torch.device(device)
        dtype = torch.bfloat16 if hf.dtype == "bf16" or (hf.dtype == "auto" and dev.type == "cuda") else torch.float32
        src = str(local) if local.exists() else name
        try:
            tok = transformers.AutoTokenizer.from_pretrained(src)
            # transformers renamed `torch_dtype` to `dtype` in 4.56 (the old name warns since).
            major, minor = (int(v) for v in transformers.__version__.split(".")[:2])
            key = "dtype" if (major, minor) >= (4, 56) else "torch_dtype"
            model = transformers.AutoModelForCausalLM.from_pretrained(src, **{key: dtype})
        except (OSError, ValueError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ConfigError(f"hf.model={name!r} could not be loaded ({first}); check the path or name") from None
        if hf.lora_r > 0:
            peft = _import("peft")
            lora = peft.LoraConfig(r=hf.lora_r, lora_alpha=hf.lora_alpha, target_modules="all-linear",
                                   lora_dropout=0.0, task_type="CAUSAL_LM")
            model = peft.get_peft_model(model, lora)
        return cls(model, tok, dev, role=role, max_new_tokens=max_new_tokens)

    # -- tokenizer --

    @property
    def eot_id(self) -> int | None:
        return int(self.tokenizer.eos_token_id)

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def decode(self, ids: Sequence[int]) -> str:
        return str(self.tokenizer.decode(list(ids), skip_special_tokens=False))

    def context_length(self) -> int | None:
        cfg = getattr(self.model, "config", None)
        for key in ("n_positions", "max_position_embeddings", "n_ctx", "seq_length"):
            n = getattr(cfg, key, None)
            if isinstance(n, int) and n > 0:
                return n
        return None

    # -- backend --

    def _logits(self, x: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=x, attention_mask=attention_mask).logits.float()

    @torch.no_grad()
    def sample(self, prompts: Sequence[str], n: int, *, temperature: float = 1.0, top_p: float = 1.0,
               max_new_tokens: int | None = None, greedy: bool = False,
               generator: torch.Generator | None = None) -> list[list[Sample]]:
        """n samples per prompt via `model.generate` (torch's global RNG; an explicit `generator` is not supported)."""
        if n < 1:
            raise ConfigError(f"samples per prompt `n` must be >= 1, got {n}; use e.g. 4")
        if generator is not None:
            raise ConfigError("HFPolicy.sample draws from torch's global RNG; seed it with torch.manual_seed instead "
                              "of passing a generator")
        if not prompts:
            return []
        max_new = max_new_tokens or self.max_new_tokens
        ctx = self.context_length()
        if ctx is not None and max_new >= ctx:
            raise ConfigError(f"`max_new_tokens` must be < the model's context {ctx}, got {max_new}; lower it")
        eot = self.eot_id
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else eot
        encoded = []
        for p in prompts:
            ids = self.encode(p) or [eot]
            if ctx is not None and len(ids) > ctx - max_new:
                ids = ids[len(ids) - (ctx - max_new):]
            encoded.append(ids)
        reps = 1 if greedy else n
        flat = [ids for ids in encoded for _ in range(reps)]
        new_tokens: list[list[int]] = []
        was_training = self.model.training
        self.model.eval()
        try:
            for i in range(0, len(flat), self.batch_size):
                chunk = flat[i:i + self.batch_size]
                width = max(len(r) for r in chunk)
                x = torch.full((len(chunk), width), pad, dtype=torch.long)
                am = torch.zeros((len(chunk), width), dtype=torch.long)
                for b, r in enumerate(chunk):
                    x[b, width - len(r):] = torch.tensor(r)
                    am[b, width - len(r):] = 1
                kwargs: dict[str, Any] = dict(max_new_tokens=max_new, pad_token_id=pad, eos_token_id=eot)
                if greedy:
                    kwargs.update(do_sample=False)
                else:
                    kwargs.update(do_sample=True, temperature=temperature, top_p=top_p, top_k=0)
                out = self.model.generate(input_ids=x.to(self.device), attention_mask=am.to(self.device), **kwargs)
                new_tokens.extend(out[:, width:].tolist())
        finally:
            self.model.train(was_training)
        result: list[list[Sample]] = []
        for i, (prompt, ids) in enumerate(zip(prompts, encoded, strict=True)):
            row = []
            for j in range(reps):
                toks = new_tokens[i * reps + j]
                cut = toks.index(eot) if eot in toks else -1
                ans = toks[:cut] if cut >= 0 else toks
                row.append(Sample(prompt, list(ids), ans + ([eot] if cut >= 0 else []), self.decode(ans), cut < 0))
            if greedy and n > 1:
                row = [Sample(s.prompt, s.prompt_ids, list(s.ids), s.text, s.truncated) for s in row * n]
            result.append(row)
        return result
