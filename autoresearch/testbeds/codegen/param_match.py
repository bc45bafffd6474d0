"""Parameter-matched transformer baseline: the LM testbed's GPT sized to an HRM config's parameter count.

The HRM reuses its two stacks H_cycles x (L_cycles + 1) times per token, so a fair baseline matches parameters, not
compute. The search keeps the HRM's head_dim, seq_len, RoPE base, init and embedding tying, uses MHA and the GPT's
default MLP (d_ff = 4 x d_model), and picks, among the (n_layers, d_model) within `tolerance` of the HRM's count,
the width closest to the HRM's (an equal-width, deeper baseline when possible); if none is within tolerance, the
closest count. The GPT is imported lazily so this module imports without the LM model.
"""

from __future__ import annotations

from typing import Any

from autoresearch.testbeds.common.hrm_config import HRMConfig

__all__ = ["match_gpt_config", "hrm_param_count"]


def hrm_param_count(cfg: HRMConfig, vocab_size: int) -> int:
    """Parameters of `HRM(cfg, vocab_size)` without building it (equals `HRM.num_params()`, tested)."""
    block = 4 * cfg.d_model**2 + 3 * cfg.d_model * cfg.d_ff
    embed = vocab_size * cfg.d_model * (1 if cfg.tie_embeddings else 2)
    return 2 * cfg.layers_per_stack * block + embed


def match_gpt_config(cfg: HRMConfig, vocab_size: int, *, tolerance: float = 0.05, max_layers: int = 48,
                     verbose: bool = True) -> Any:
    """The LM testbed's `ModelConfig` whose GPT parameter count is closest to the HRM's; prints both counts."""
    import torch

    from autoresearch.testbeds.common.config import ModelConfig
    from autoresearch.testbeds.common.gpt import GPT

    target = hrm_param_count(cfg, vocab_size)
    head_dim = cfg.head_dim

    def make(n_layers: int, d_model: int) -> ModelConfig:
        heads = d_model // head_dim
        return ModelConfig(d_model=d_model, n_layers=n_layers, n_heads=heads, n_kv_heads=heads, d_ff=4 * d_model,
                           seq_len=cfg.seq_len, rope_base=cfg.rope_base, tie_embeddings=cfg.tie_embeddings,
                           init_std=cfg.init_std)

    def count(mc: ModelConfig) -> int:
        with torch.device("meta"):  # shapes only: no memory, no init cost
            return int(GPT(mc, vocab_size).num_params())

    best: tuple[tuple[float, int, float], ModelConfig] | None = None
    for d_model in range(head_dim * 2, 2 * cfg.d_model + 1, head_dim):
        # Parameters grow linearly in depth at a fixed width: two counts give the whole line.
        c1, c2 = count(make(1, d_model)), count(make(2, d_model))
        per_layer = c2 - c1
        n_layers = max(1, min(max_layers, round((target - (c1 - per_layer)) / per_layer)))
        mc = make(n_layers, d_model)
        rel = abs(c1 + (n_layers - 1) * per_layer - target) / target
        score = (0.0 if rel <= tolerance else rel, abs(d_model - cfg.d_model), rel)
        if best is None or score < best[0]:
            best = (score, mc)
    assert best is not None
    mc = best[1]
    n = count(mc)
    if verbose:
        print(f"hrm params: {target:,}  gpt params: {n:,}  (n_layers={mc.n_layers}, d_model={mc.d_model}, "
              f"diff {100 * (n - target) / target:+.2f}%)")
    return mc
