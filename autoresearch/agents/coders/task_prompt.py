"""The task as a coder reads it: one Markdown text, the same for an executable (`cmd:`), Claude Code, Codex and aider.

It states the task's flags with their off (baseline) and on values, the files to touch, the rule that flag off must
leave the baseline code path bit-identical (the pipeline checks it with a regression run, issue 10 item 5), and —
on a retry — the error of the previous attempt with the instruction to fix only that (DESIGN.md §7: the fix loop).
"""

from __future__ import annotations

from autoresearch.agents.roles import TaskSpec

__all__ = ["render_task", "TASK_FILE_NAME"]

TASK_FILE_NAME = ".autoresearch-task.md"


def _value(v: object) -> str:
    return repr(v) if isinstance(v, str) else str(v)


def render_task(task: TaskSpec, feedback: str | None = None, editable: list[str] | None = None) -> str:
    """The Markdown task text for `task`; `feedback` (the capped error of the last failed attempt) adds a section
    asking to fix only that error; `editable` (globs) names the paths the edit must stay in."""
    lines = [f"# Task: {task.name}", "", f"Idea: {task.idea}", ""]
    if task.description and task.description != task.idea:
        lines += [task.description, ""]
    if task.flags:
        lines += ["## Flags", "",
                  "Add each flag to the config (the dataclass field with a one-line help text, default = the off "
                  "value) and the code that uses it:", ""]
        for f in task.flags:
            extra = f", choices {', '.join(map(_value, f.choices))}" if f.choices else ""
            lines.append(f"- `{f.key}` ({f.type}{extra}): off = {_value(f.off)} (baseline), on = {_value(f.on)}")
        lines.append("")
    if task.files:
        lines += ["## Files to touch", "", *(f"- {p}" for p in task.files), ""]
    if task.expected_effect or task.metric:
        effect = task.expected_effect or "not stated"
        size = "" if task.effect_size is None else f" (expected delta {task.effect_size:+g})"
        lines += ["## Expected effect", "", f"{effect}{size}; metric: {task.metric or 'the study metric'}", ""]
    lines += ["## Rules", "",
              "- With every flag at its off value the code must run exactly the old path: the pipeline trains a "
              "few steps with the flags off and requires per-step losses bit-identical to the unedited code. "
              "Branch on the flag (`if cfg.flag != off:`) instead of rewriting the old computation, and do not "
              "change initialisation, random number use or the order of operations of the baseline.",
              "- Do not commit; the pipeline reads the edit back as the git diff and commits it.",
              "- Do not touch tests, the workspace file or anything outside the editable paths."]
    if editable:
        lines.append(f"- Editable paths: {', '.join(editable)}")
    lines.append("")
    if feedback:
        lines += ["## Feedback from the previous attempt", "",
                  "The previous attempt failed with the error below. Fix only this error; keep the rest of the edit.",
                  "", "```", feedback.rstrip(), "```", ""]
    return "\n".join(lines)
