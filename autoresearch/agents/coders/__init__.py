"""Coders of the research pipeline: what edits an idea version's worktree so that the task's flags exist.

- `none` (NoneCoder): no edit, the idea is an existing flag;
- `patch:FILE` (PatchCoder): a person's unified diff, applied with `git apply` after `git apply --check`;
- `cmd:PATH` (CommandCoder): any executable, run in the worktree with the task as a file and in the environment;
- `claude`, `codex`, `aider` (CliAgentCoder): command-line coding agents, run like `cmd:` with their own
  non-interactive flags;
- `openai:MODEL[@URL]`, `anthropic:MODEL`, ... (LLMCoder, llm_coder.py, imported lazily by role_specs): a language
  model writing SEARCH/REPLACE edit blocks (edit_blocks.py), whole files as the fallback.
Every coder's edit is read back as the git diff of the worktree, and `enforce` (allowed_paths.py) then lists the
changed paths outside the editable globs or inside the protected ones. Each executable runs in its own process
group with a timeout that kills the whole group (process.py).
"""

from __future__ import annotations

from autoresearch.agents.coders.allowed_paths import changed_paths, enforce, first_match, match_glob
from autoresearch.agents.coders.cli_agents import CLI_AGENTS, CliAgentCoder
from autoresearch.agents.coders.command import DEFAULT_TIMEOUT_S, CommandCoder, run_coder
from autoresearch.agents.coders.edit_blocks import EditBlock, apply_edit_blocks, parse_edit_blocks, parse_whole_files
from autoresearch.agents.coders.none import NoneCoder
from autoresearch.agents.coders.patch import PatchCoder, patch_paths
from autoresearch.agents.coders.process import ProcessOutcome, cap_text, run_in_group
from autoresearch.agents.coders.task_prompt import TASK_FILE_NAME, render_task

__all__ = [
    "NoneCoder",
    "PatchCoder",
    "CommandCoder",
    "CliAgentCoder",
    "CLI_AGENTS",
    "DEFAULT_TIMEOUT_S",
    "enforce",
    "changed_paths",
    "match_glob",
    "first_match",
    "patch_paths",
    "render_task",
    "TASK_FILE_NAME",
    "run_coder",
    "run_in_group",
    "ProcessOutcome",
    "cap_text",
    "EditBlock",
    "parse_edit_blocks",
    "apply_edit_blocks",
    "parse_whole_files",
]
