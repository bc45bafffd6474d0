"""Code-generation testbed: causal HRM, the generated task suite, SFT data (MBPP, suite); generation is the kit's."""

from __future__ import annotations

from autoresearch.testbeds.codegen.param_match import hrm_param_count, match_gpt_config
from autoresearch.testbeds.common.hrm import HRM
from autoresearch.testbeds.common.hrm_config import HRM_PRESETS, HRMConfig, hrm_gpu, hrm_preset, hrm_small, hrm_tiny
from autoresearch.testbeds.common.sft_data import SFTData, build_sft_data, mbpp_pairs, suite_pairs
from autoresearch.testbeds.common.tasks import SuiteTask, make_suite, split_of, template_names, to_training_text

__all__ = [
    "HRMConfig",
    "HRM_PRESETS",
    "hrm_preset",
    "hrm_tiny",
    "hrm_small",
    "hrm_gpu",
    "HRM",
    "SuiteTask",
    "make_suite",
    "split_of",
    "template_names",
    "to_training_text",
    "SFTData",
    "build_sft_data",
    "mbpp_pairs",
    "suite_pairs",
    "match_gpt_config",
    "hrm_param_count",
]
