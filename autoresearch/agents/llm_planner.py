"""Planner on a language model (`--planner openai:MODEL`, `anthropic:MODEL`, ...): the idea in, tasks and a plan out.

What the model is sent (templates/planner.md, overridable as DIR/prompts/planner.md): the idea, the testbed and its
metric with the direction, the flag space (each key's default and alternatives or range), the user's `--flag`
values, whether a coder may add keys, the editable workspace files (config first, then the files the idea names,
within `env.context_tokens`), what was tried (each task's flags) and the idea log. It answers a `PlanOut`
(schemas.py). Each proposed task is checked (task_check.py) and every problem goes back to the model in a re-ask
(at most 3 calls): an off value that is not the config default, a key outside the config without a coder that
edits, a file outside the editable paths, a task whose flags and values were tried (memory), a missing `--flag`.
It never writes code; `design` returns the model's plan.md with the default task listing appended.
"""

from __future__ import annotations

from typing import Any

from autoresearch.agents.llm.prompt_text import (
    cap,
    describe_flag,
    describe_flag_space,
    describe_tried,
    select_files,
)
from autoresearch.agents.llm.role_base import LLMRole
from autoresearch.agents.llm.schemas import PlanOut, task_from_out
from autoresearch.agents.llm.task_check import check_task
from autoresearch.agents.llm.templates import prompt_messages
from autoresearch.agents.roles import Design, PlanContext, Planner, TaskSpec
from autoresearch.errors import ConfigError
from autoresearch.testbeds.flags import parse_user_flags

__all__ = ["LLMPlanner"]

IDEA_LOG_CHARS = 6000
"""The idea log's last characters sent to the planner (the newest versions matter most)."""


class LLMPlanner(LLMRole, Planner):
    """A planner that asks a language model (`backend_spec`) through one LLMSession."""

    role = "planner"

    def __init__(self, backend_spec: str, *, env: Any, backend: Any = None) -> None:
        super().__init__(backend_spec, env=env, backend=backend)
        self._plan: tuple[str, dict[str, Any]] | None = None
        """(plan_md, metrics) of the last accepted answer, for `design`."""

    # --- the role -----------------------------------------------------------------------------------------------

    def propose(self, ctx: PlanContext, n: int = 1) -> list[TaskSpec]:
        from autoresearch.agents.llm.structured import ask_structured

        n = max(1, n)
        metric, direction = _metric(ctx)
        user_flags = parse_user_flags([f"{k}={v}" for k, v in ctx.user_flags.items()], ctx.base_config)
        accepted: list[TaskSpec] = []

        def validate(out: PlanOut) -> str | None:
            tasks: list[TaskSpec] = []
            problems: list[str] = []
            for i, t in enumerate(out.tasks[:n], 1):
                try:
                    task = task_from_out(t, ctx.idea or t.description)
                except ConfigError as e:
                    problems.append(f"task {i}: {e}")
                    continue
                task.metric = metric
                task, errs = check_task(task, config=ctx.base_config, flag_space=ctx.flag_space,
                                        tried=[*ctx.tried, *tasks], editable=self.env.editable,
                                        coder_edits=ctx.coder_edits, user_flags=user_flags)
                problems += [f"task {i} ({task.name}): {e}" for e in errs]
                if not errs:
                    tasks.append(task)
            if problems:
                return "; ".join(problems)
            accepted[:] = tasks
            return None

        messages = prompt_messages(self.role, self.env, **self._fields(ctx, n, metric, direction, user_flags))
        out = ask_structured(self.session, messages, PlanOut, validate=validate, **self.knobs(2048))
        self._plan = (out.plan_md.strip(), dict(out.metrics))
        return accepted

    def design(self, ctx: PlanContext, tasks: list[TaskSpec]) -> Design:
        """The model's plan.md of the last proposal (the default task listing appended); the default design when
        this planner has not proposed yet (e.g. after a resume)."""
        base = super().design(ctx, tasks)
        if self._plan is None or not self._plan[0]:
            return base
        plan_md, metrics = self._plan
        listing = base.plan_md.split("\n", 1)[1].strip() if "\n" in base.plan_md else ""
        return Design(f"{plan_md}\n\n## Tasks\n\n{listing}\n", list(tasks),
                      {**metrics, **base.metrics})  # the workspace's metric and direction win

    # --- the prompt ---------------------------------------------------------------------------------------------

    def _fields(self, ctx: PlanContext, n: int, metric: str, direction: str, user_flags: list[Any]) -> dict[str, Any]:
        env = self.env
        file_list, files = select_files(env.root, env.editable, ctx.idea, env.context_tokens)
        idea_log = ctx.idea_log or env.idea_log()
        if ctx.coder_edits:
            code_rule = ("A Coder that edits code is available: you may add NEW config keys (set needs_code true and "
                         "list the files to change; off = the default the new field will get, which must keep the "
                         "old behaviour). Prefer existing keys when they express the idea.")
        else:
            code_rule = ("No Coder edits code in this run: use ONLY keys from the flag space above (needs_code "
                         "false, files []).")
        testbed = ctx.testbed
        metrics = dict(getattr(testbed, "metrics", {}) or {})
        return {
            "idea": ctx.idea or "(no idea given: propose the most promising untried idea from the flag space)",
            "testbed": f"`{getattr(testbed, 'spec', '') or getattr(testbed, 'name', '?')}`"
                       + (f" (metrics: {', '.join(f'{k} ({v} is better)' for k, v in metrics.items())})"
                          if metrics else ""),
            "metric": metric,
            "direction": direction,
            "flag_space": describe_flag_space(ctx.flag_space),
            "user_flags": "\n".join(describe_flag(f) for f in user_flags) or "(none)",
            "code_rule": code_rule,
            "editable": ", ".join(env.editable) or "(none)",
            "file_list": file_list,
            "files": files,
            "tried": describe_tried(ctx.tried),
            "idea_log": cap(idea_log.strip(), IDEA_LOG_CHARS, keep="end") or "(empty)",
            "n": n,
        }


def _metric(ctx: PlanContext) -> tuple[str, str]:
    metrics = dict(getattr(ctx.testbed, "metrics", {}) or {})
    metric = ctx.metric or next(iter(metrics), "") or "val_loss"
    return metric, "higher" if metrics.get(metric) == "higher" else "lower"
