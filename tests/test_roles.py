"""The role interface and the rule-based roles: flag space, planner `none` (optuna TPE), judge `rules`, analyzer
`rules`, reviser `none`, role specs. No network, no training: hand-made configs and study numbers."""

from __future__ import annotations

import dataclasses
import math
import statistics
from dataclasses import dataclass
from typing import Literal

import pytest
import yaml

from autoresearch.agents import (
    Analysis,
    Evidence,
    Flag,
    PlanContext,
    StudySummary,
    TaskSpec,
    complete_flags,
    flags_from_config_diff,
    make_analyzer,
    make_coder,
    make_judge,
    make_planner,
    make_reviser,
    parse_user_flags,
    render_analysis_md,
)
from autoresearch.agents.analyzer_rules import NOISE_DEFAULT, NOISE_FLOOR, quantity_noise
from autoresearch.agents.judge_rules import BLOCKING
from autoresearch.agents.planner_none import suggest_value, task_name
from autoresearch.errors import ConfigError
from autoresearch.harness.config import check_ranges, param
from autoresearch.testbeds.base import Testbed
from autoresearch.testbeds.flags import config_flags

# --- a torch-free testbed with a flag space -----------------------------------------------------------------------


@dataclass
class _Model:
    act: Literal["a", "b", "c"] = param("a", "activation")
    norm: bool = param(True, "a norm")
    width: int = param(8, "width", ge=1)


@dataclass
class _Optim:
    kind: Literal["sgd", "adam"] = param("sgd", "optimizer")
    lr: float = param(0.01, "learning rate", gt=0)
    warm: float = param(0.1, "warm-up fraction", ge=0, le=1)

    def __post_init__(self) -> None:
        check_ranges(self, "optim")


@dataclass
class _Train:
    seed: int = param(0, "seed")
    compile: bool = param(False, "infrastructure, never an idea")
    precision: Literal["fp32", "bf16"] = param("fp32", "infrastructure, never an idea")


@dataclass
class _Cfg:
    model: _Model = param(_Model(), "model")
    optim: _Optim = param(_Optim(), "optim")
    train: _Train = param(_Train(), "train")


class _Bed(Testbed):
    name = "toy"
    metrics = {"val_loss": "lower", "acc": "higher"}
    config_class = _Cfg
    preset_factories = {"tiny": _Cfg}
    search_ranges = {"optim.lr": (1e-4, 1e-1, "log"), "optim.warm": (0.0, 0.5, "linear"),
                     "model.width": (4, 16, "linear")}

    def train(self, cfg, exp, *, resume=False, progress=False):  # pragma: no cover - never trained here
        raise NotImplementedError


def _ctx(seed: int = 0, **kw) -> PlanContext:
    bed = _Bed()
    cfg = bed.make_config("tiny")
    return PlanContext(**{"idea": "", **kw}, testbed=bed, base_config=cfg, flag_space=bed.flag_space(cfg), seed=seed)


def _run(planner, ctx: PlanContext, n: int, result=lambda t, i: -0.01, kept_at: int | None = None) -> list[TaskSpec]:
    out = []
    for i in range(n):
        got = planner.propose(ctx, 1)
        if not got:
            break
        task = got[0]
        ctx.tried.append(task)
        planner.observe(task, result(task, i), kept=(i == kept_at))
        out.append(task)
    return out


# --- the flag space -------------------------------------------------------------------------------------------------


def test_flag_space_of_a_config_lists_alternatives_and_ranges_not_infrastructure():
    space = _Bed().flag_space()
    keys = [(f.key, f.on) for f in space]
    assert ("model.act", "b") in keys and ("model.act", "c") in keys and ("model.act", "a") not in keys
    assert ("model.norm", False) in keys and ("optim.kind", "adam") in keys
    assert not any(f.key.startswith("train.") for f in space)
    lr = next(f for f in space if f.key == "optim.lr")
    assert (lr.type, lr.off, lr.on, lr.low, lr.high, lr.log) == ("float", 0.01, None, 1e-4, 1e-1, True)
    width = next(f for f in space if f.key == "model.width")
    assert (width.type, width.low, width.high, width.log) == ("int", 4, 16, False)
    # off is the config's value, so an overridden base gives other alternatives
    cfg = _Bed().make_config("tiny", {"model.act": "b", "model.norm": False})
    keys = [(f.key, f.off, f.on) for f in _Bed().flag_space(cfg)]
    assert ("model.act", "b", "a") in keys and ("model.norm", False, True) in keys


def test_flag_space_idea_sections_can_name_a_top_level_field():
    flags = config_flags(_Cfg(), ("optim", "train.compile"))
    assert {f.key for f in flags} == {"optim.kind", "train.compile"}


@pytest.mark.parametrize("ranges, words", [
    ({"optim.nope": (0.1, 1.0, "linear")}, "not a config key"),
    ({"model.act": (0.1, 1.0, "linear")}, "not numeric"),
    ({"optim.lr": (0.0, 1.0, "log")}, "low > 0 for log"),
    ({"optim.lr": (1.0, 0.1, "linear")}, "low < high"),
    ({"optim.lr": (0.1, 1.0, "cubic")}, "'log'|'linear'"),
])
def test_bad_search_ranges_are_one_line_errors(ranges, words):
    with pytest.raises(ConfigError) as e:
        config_flags(_Cfg(), ("model",), ranges)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_a_search_range_the_config_refuses_is_an_error():
    class Bad(_Bed):
        search_ranges = {"optim.lr": (-1.0, 1.0, "linear")}  # lr must be > 0

    with pytest.raises(ConfigError, match="search range of optim.lr"):
        Bad().flag_space()


def test_flag_space_of_lm_tiny():
    from autoresearch.testbeds import get_testbed

    tb = get_testbed("lm")
    cfg = tb.preset_config("tiny")
    space = tb.flag_space(cfg)
    by = {(f.key, f.on): f for f in space}
    assert by[("model.qk_norm", False)].off is True
    assert by[("optim.optimizer", "adamw")].off == "muon"
    assert ("model.mlp", "swiglu") in by and ("model.mlp", "gelu") in by
    assert ("optim.schedule", "cosine") in by and ("optim.schedule", "wsd") not in by  # tiny's baseline is wsd
    assert not any(f.key.split(".")[0] in ("train", "eval", "data") for f in space)
    numeric = {f.key: f for f in space if f.numeric}
    assert set(numeric) == set(tb.search_ranges)
    assert numeric["optim.muon_lr"].off == cfg.optim.muon_lr and numeric["optim.muon_lr"].log


def test_codegen_declares_its_ideas():
    from autoresearch.testbeds.codegen.testbed import CodegenTestbed

    assert "arch" in CodegenTestbed.idea_sections and "hrm" in CodegenTestbed.idea_sections
    for key, (low, high, scale) in CodegenTestbed.search_ranges.items():
        assert key.split(".")[0] in ("optim", "hrm") and low < high and scale in ("log", "linear")


# --- flags after an edit ----------------------------------------------------------------------------------------------


@dataclass
class _Model2(_Model):
    temp: bool = param(False, "new: a learnable temperature")
    temp_init: float = param(1.0, "new: its initial value")


@dataclass
class _Cfg2(_Cfg):
    model: _Model2 = param(_Model2(), "model")


def test_flags_from_config_diff_finds_new_fields():
    flags = {f.key: f for f in flags_from_config_diff(_Cfg(), _Cfg2())}
    assert set(flags) == {"model.temp", "model.temp_init"}
    assert (flags["model.temp"].type, flags["model.temp"].off, flags["model.temp"].on) == ("bool", False, True)
    assert flags["model.temp_init"].on is None and flags["model.temp_init"].off == 1.0  # needs --flag KEY=VALUE


def test_complete_flags_after_an_edit():
    given = parse_user_flags(["model.temp_init=0.5"], _Cfg())
    assert given[0].off is None and given[0].on == 0.5  # not a key before the edit
    done = {f.key: f for f in complete_flags(given, _Cfg(), _Cfg2())}
    assert (done["model.temp_init"].off, done["model.temp_init"].on, done["model.temp_init"].type) == (1.0, 0.5, "float")
    assert done["model.temp"].on is True  # the new bool, found by the diff
    with pytest.raises(ConfigError, match="model.temp_init=VALUE"):
        complete_flags([], _Cfg(), _Cfg2())  # a new float without a value
    with pytest.raises(ConfigError, match="not config keys after the edit"):
        complete_flags(parse_user_flags(["model.other=1"]), _Cfg(), _Cfg2())
    with pytest.raises(ConfigError, match="not expressed as a flag"):
        complete_flags([], _Cfg(), _Cfg())


# --- the planner ------------------------------------------------------------------------------------------------------


def test_planner_is_deterministic_for_a_seed_and_the_seed_matters():
    a = [t.name for t in _run(make_planner("none"), _ctx(seed=1), 14)]
    b = [t.name for t in _run(make_planner("none"), _ctx(seed=1), 14)]
    c = [t.name for t in _run(make_planner("none"), _ctx(seed=2), 14)]
    assert a == b and a != c


def test_planner_never_repeats_and_covers_every_alternative_first():
    ctx = _ctx()
    tasks = _run(make_planner("none"), ctx, 20)
    assert len(tasks) == 20
    sigs = [t.signature() for t in tasks]
    assert len(set(sigs)) == len(sigs)
    assert len({t.name for t in tasks}) == len(tasks)
    discrete = [f for f in ctx.flag_space if not f.numeric]
    first = tasks[: len(discrete) + 3]  # every bool/choice alternative and one value of each numeric key
    assert {(t.flags[0].key, t.flags[0].on) for t in first if not t.flags[0].numeric} == \
        {(f.key, f.on) for f in discrete}
    assert all(not t.needs_code and t.files == [] and t.metric == "val_loss" for t in tasks)
    for t in tasks:
        assert t.off_overrides() == {f.key: f.off for f in t.flags}
        _Bed().make_config("tiny", t.on_overrides())  # every proposal is a valid config


def test_planner_numeric_values_stay_in_their_ranges_log_and_linear():
    tasks = _run(make_planner("none"), _ctx(), 40, result=lambda t, i: float(i % 7) * 0.01)
    values: dict[str, list] = {}
    for t in tasks:
        for f in t.flags:
            if f.numeric:
                values.setdefault(f.key, []).append(f.on)
    assert set(values) == {"optim.lr", "optim.warm", "model.width"}
    assert all(1e-4 <= v <= 1e-1 for v in values["optim.lr"])
    assert all(0.0 <= v <= 0.5 for v in values["optim.warm"])
    assert all(isinstance(v, int) and 4 <= v <= 16 for v in values["model.width"])
    assert 0.01 not in values["optim.lr"] and 8 not in values["model.width"]  # never the baseline value


def test_suggest_value_samples_a_log_range_on_a_log_scale():
    flag = Flag("optim.lr", "float", off=0.01, on=None, low=1e-4, high=1e-1, log=True)
    draws = [suggest_value(flag, [], seed) for seed in range(40)]
    assert all(1e-4 <= v <= 1e-1 for v in draws)
    assert statistics.median(draws) < 0.01  # log-uniform median ~3e-3; a linear draw would give ~0.05
    assert all(float(f"{v:.3g}") == v for v in draws)


def test_suggest_value_follows_the_results():
    flag = Flag("x", "float", off=0.5, on=None, low=0.0, high=1.0)
    good = [(v / 20, -abs(v / 20 - 0.2)) for v in range(21)]  # best near 0.2
    draws = [suggest_value(flag, good, seed) for seed in range(15)]
    assert statistics.median(draws) < 0.4  # uniform would be ~0.5; TPE concentrates around the best trials


def test_planner_proposes_neighbours_of_a_kept_task():
    ctx = _ctx(seed=3)
    planner = make_planner("none")
    tasks = _run(planner, ctx, 4, kept_at=3)
    winner = tasks[3]
    nxt = _run(planner, ctx, 8)
    wkeys = {(f.key, repr(f.on)) for f in winner.flags}
    for t in nxt:
        keys = {(f.key, repr(f.on)) for f in t.flags}
        near = len(t.flags) == len(winner.flags) and {f.key for f in t.flags} == {f.key for f in winner.flags}
        assert wkeys < keys and len(t.flags) == len(winner.flags) + 1 or near, (t.name, winner.name)
        assert "neighbour" in t.description
    # ctx.kept works the same way (a resumed orchestrator passes the kept tasks)
    fresh = make_planner("none")
    ctx2 = _ctx(seed=3, tried=list(ctx.tried), kept=[winner])
    assert all(wkeys <= {(f.key, repr(f.on)) for f in t.flags} or {f.key for f in t.flags} ==
               {f.key for f in winner.flags} for t in fresh.propose(ctx2, 3))


def test_a_kept_task_whose_flags_a_coder_added_gets_no_neighbours():
    """Its flags live on its idea branch, not in the base config of the next run (a fresh user's run spent all its
    versions on neighbours whose flag did not exist)."""
    added = TaskSpec(idea="shift", name="shift", description="shift", needs_code=True,
                     flags=[Flag("model.shift", "float", 0.0, 0.5)])
    tasks = make_planner("none").propose(_ctx(seed=3, kept=[added]), 3)
    assert tasks and all("model.shift" not in {f.key for f in t.flags} and "neighbour" not in t.description
                         for t in tasks)


def test_neighbours_of_a_numeric_winner_are_near_it():
    ctx = _ctx(seed=0)
    planner = make_planner("none")
    winner = TaskSpec("x", "lr-0.003", "x", [Flag("optim.lr", "float", 0.01, 0.003, low=1e-4, high=1e-1, log=True)])
    ctx.tried.append(winner)
    planner.observe(winner, 0.05, kept=True)
    near = [t for t in _run(planner, ctx, 12) if [f.key for f in t.flags] == ["optim.lr"]]
    assert near, "no near value of the winner's numeric flag in 12 neighbours"
    factor = (1e-1 / 1e-4) ** 0.15
    assert all(0.003 / factor - 1e-12 <= t.flags[0].on <= 0.003 * factor + 1e-12 for t in near)


def test_planner_after_a_replay_of_observe_proposes_what_an_uninterrupted_one_would():
    full = _run(make_planner("none"), _ctx(seed=5), 14, result=lambda t, i: 0.01 * (i % 4))
    ctx = _ctx(seed=5, tried=full[:10])
    resumed = make_planner("none")
    for i, t in enumerate(full[:10]):
        resumed.observe(t, 0.01 * (i % 4), kept=False)
    for i in range(10, 14):
        [task] = resumed.propose(ctx, 1)
        assert task == full[i]
        ctx.tried.append(task)
        resumed.observe(task, 0.01 * (i % 4), kept=False)


def test_planner_runs_out_when_the_space_has_no_numbers():
    ctx = _ctx()
    ctx.flag_space = [f for f in ctx.flag_space if not f.numeric]
    tasks = _run(make_planner("none"), ctx, 50)
    assert len(tasks) == len(ctx.flag_space)
    assert make_planner("none").propose(ctx, 3) == []


def test_planner_turns_a_user_idea_into_one_task_for_an_editing_coder():
    ctx = _ctx(idea="Use a learnable temperature per head!", coder_edits=True,
               user_flags={"model.temp": "true", "model.act": "b"})
    planner = make_planner("none")
    [task] = planner.propose(ctx, 3)
    assert task.needs_code and task.name == "use-a-learnable-temperature-per-head"
    flags = {f.key: f for f in task.flags}
    assert (flags["model.temp"].off, flags["model.temp"].on) == (None, True)  # filled after the edit
    assert (flags["model.act"].off, flags["model.act"].on, flags["model.act"].type) == ("a", "b", "choice")
    ctx.tried.append(task)
    assert planner.propose(ctx, 1) == []  # one task per idea; the reviser makes the next versions
    # an editing coder without --flag: flags come from the edit (complete_flags)
    [bare] = make_planner("none").propose(_ctx(idea="x", coder_edits=True), 1)
    assert bare.flags == [] and bare.needs_code


def test_planner_with_coder_none_takes_user_flags_of_existing_keys_only():
    [task] = make_planner("none").propose(_ctx(idea="", user_flags={"optim.lr": "0.02"}), 1)
    assert not task.needs_code and task.on_overrides() == {"optim.lr": 0.02} and task.flags[0].off == 0.01
    with pytest.raises(ConfigError, match="coder none edits nothing"):
        make_planner("none").propose(_ctx(user_flags={"model.temp": "true"}), 1)


def test_task_names_fit_a_git_branch():
    flags = [Flag("optim.muon_lr", "float", 0.02, 3.1e-5), Flag("model.mlp", "choice", "relu2", "SwiGLU"),
             Flag("model.qk_norm", "bool", True, False)]
    assert task_name(flags) == "muon-lr-3.1e-05-and-mlp-swiglu-and-qk-norm-off"


# --- data round trips ---------------------------------------------------------------------------------------------------


def test_taskspec_round_trips_through_yaml_and_refuses_unknown_keys():
    task = TaskSpec("idea", "n", "d", [Flag("model.mlp", "choice", "relu2", "gelu", choices=["relu2", "gelu"]),
                                       Flag("optim.lr", "float", 0.1, 0.2, low=0.01, high=1.0, log=True)],
                    files=["surface/gpt.py"], expected_effect="lower", effect_size=0.01, metric="val_loss",
                    needs_code=True)
    back = TaskSpec.from_dict(yaml.safe_load(yaml.safe_dump(task.to_dict())))
    assert back == task
    with pytest.raises(ConfigError, match="unknown key"):
        TaskSpec.from_dict({**task.to_dict(), "colour": 1})
    with pytest.raises(ConfigError, match="lacks off"):
        Flag.from_dict({"key": "a", "type": "bool", "on": True})
    with pytest.raises(ConfigError, match="not one of"):
        Flag("a", "enum", 1, 2)  # type: ignore[arg-type]
    s = StudySummary("KEEP", "val_loss", "lower", delta=0.1, statuses={"idea": ["ok"]})
    assert StudySummary.from_dict(yaml.safe_load(yaml.safe_dump(s.to_dict()))).delta == 0.1
    assert s.to_dict()["ci_low"] is None  # NaN -> None in YAML


# --- the judge ----------------------------------------------------------------------------------------------------------

_OK = dict(editable_ok=True, compile_ok=True, lint_ok=True, checks_ok=True, regression_ok=True)
_TASK = TaskSpec("idea", "t", "d", [Flag("model.norm", "bool", True, False)])


def test_judge_approves_when_every_check_passed():
    v = make_judge("rules").review(_TASK, Evidence(diff="+x", changed_paths=["surface/gpt.py"], **_OK))
    assert (v.decision, v.reasons) == ("approve", [])


@pytest.mark.parametrize("field", [name for name, _ in BLOCKING])
def test_judge_revises_with_each_blocking_reason(field):
    ev = Evidence(**{**_OK, field: False}, details="regression: first difference at step 3\n")
    v = make_judge("rules").review(_TASK, ev)
    assert v.decision == "revise"
    assert v.reasons[0] == dict(BLOCKING)[field] and v.reasons[-1] == "regression: first difference at step 3"
    assert all("\n" not in r for r in v.reasons)


def test_judge_lists_every_failure():
    v = make_judge("rules").review(_TASK, Evidence())
    assert v.decision == "revise" and v.reasons == [why for _, why in BLOCKING]


# --- the analyzer -------------------------------------------------------------------------------------------------------


def _study(**kw) -> StudySummary:
    base = dict(verdict="DISCARD", metric="val_loss", direction="lower", baseline_mean=5.0, idea_mean=5.0,
                delta=0.0, ci_low=-0.01, ci_high=0.01, p_value=0.8, n_seeds=3, baseline_tokens_per_s=1000.0,
                idea_tokens_per_s=1000.0, baseline_memory=200.0, idea_memory=200.0,
                statuses={"baseline": ["ok"] * 3, "idea": ["ok"] * 3},
                per_seed={"baseline": {"tokens_per_s": [990.0, 1000.0, 1010.0], "peak_memory_mb": [200.0] * 3},
                          "idea": {"tokens_per_s": [995.0, 1000.0, 1005.0], "peak_memory_mb": [200.0] * 3}})
    return StudySummary(**{**base, **kw})


@pytest.mark.parametrize("kw, kind", [
    ({"statuses": {"baseline": ["ok"] * 3, "idea": ["ok", "diverged", "ok"]}, "verdict": "CRASH",
      "error": "Traceback\nValueError: boom"}, "bug"),
    ({"statuses": {"baseline": ["ok"], "idea": ["crashed"]}}, "bug"),
    ({"verdict": "KEEP", "delta": 0.05, "ci_low": 0.02, "ci_high": 0.08, "p_value": 0.01}, "win"),
    ({"idea_tokens_per_s": 700.0, "delta": -0.02, "ci_low": -0.04, "ci_high": -0.01}, "systems"),
    ({"idea_memory": 260.0}, "systems"),
    ({"idea_memory": 204.0}, "noise"),  # +2% memory is within the 5% floor
    ({"delta": -0.05, "ci_low": -0.08, "ci_high": -0.02, "p_value": 0.01}, "theory"),
    # AdamW instead of Muon on the quickstart: faster steps but much worse per token -> the maths, not overhead
    ({"idea_tokens_per_s": 2500.0, "delta": -0.63, "ci_low": -1.2, "ci_high": -0.04, "p_value": 0.015}, "theory"),
    ({"idea_tokens_per_s": 2500.0}, "systems"),  # faster at equal loss: a systems question
    ({}, "noise"),
    ({"delta": 0.004, "ci_low": 0.001, "ci_high": 0.007}, "noise"),  # significant but below the min effect
])
def test_analyzer_kinds(kw, kind):
    a = make_analyzer("rules").analyze(_TASK, _study(**kw))
    assert a.kind == kind and a.summary.startswith(kind + ":") and "\n" not in a.summary
    assert a.evidence["n_seeds"] == 3 and "tokens_per_s" in a.evidence


def test_analyzer_evidence_has_the_numbers_and_the_noise():
    a = make_analyzer("rules").analyze(_TASK, _study(idea_tokens_per_s=700.0))
    speed = a.evidence["tokens_per_s"]
    b, i = [990.0, 1000.0, 1010.0], [995.0, 1000.0, 1005.0]
    se = math.sqrt(statistics.variance(b) / 3 + statistics.variance(i) / 3)
    assert speed["noise"] == pytest.approx(max(2 * se, NOISE_FLOOR * 1000.0)) and speed["moved"]
    assert speed["change_pct"] == pytest.approx(-30.0) and "-30.0%" in a.summary
    assert not a.evidence["memory_mb"]["moved"]
    # a small speed change within the noise is not systems
    small = make_analyzer("rules").analyze(_TASK, _study(idea_tokens_per_s=1005.0))
    assert small.kind == "noise" and not small.evidence["tokens_per_s"]["moved"]


def test_quantity_noise_without_per_seed_values():
    assert quantity_noise(1000.0, [], []) == pytest.approx(NOISE_DEFAULT * 1000.0)
    assert quantity_noise(1000.0, [1000.0, 1000.0], [1000.0, 1000.0]) == pytest.approx(NOISE_FLOOR * 1000.0)


def test_analysis_md_renders_kind_flags_and_numbers():
    study = _study(verdict="KEEP", delta=0.05, ci_low=0.02, ci_high=0.08, error="")
    a = make_analyzer("rules").analyze(_TASK, study)
    md = render_analysis_md(_TASK, study, a, version="v2")
    assert md.startswith("# Analysis: t v2") and "**win**" in md and "`model.norm`" in md
    assert "| tokens/s |" in md and "0.05" in md and "KEEP" in md


# --- the reviser --------------------------------------------------------------------------------------------------------

_NUM = TaskSpec("lr", "lr-0.003", "d", [Flag("model.norm", "bool", True, False),
                                        Flag("optim.lr", "float", 0.01, 0.003, low=1e-4, high=1e-1, log=True)])


def _analysis(kind: str, delta: float = -0.01) -> Analysis:
    return Analysis(kind, f"{kind}: x", {"delta": delta})


def test_reviser_proposes_the_next_tpe_value_of_a_numeric_flag():
    r = make_reviser("none")
    nxt = r.revise(_NUM, _analysis("noise"), [])
    assert nxt is not None and nxt.name == _NUM.name and nxt.flags[0] == _NUM.flags[0]
    v = nxt.flags[1].on
    assert 1e-4 <= v <= 1e-1 and v not in (0.003, 0.01) and "v2" in nxt.description
    assert r.revise(_NUM, _analysis("noise"), []) == nxt  # deterministic
    third = r.revise(nxt, _analysis("theory"), [(_NUM, _analysis("noise"))])
    assert third is not None and third.flags[1].on not in (0.003, v)


@pytest.mark.parametrize("kind", ["win", "bug"])
def test_reviser_stops_after_a_win_or_a_bug(kind):
    assert make_reviser("none").revise(_NUM, _analysis(kind), []) is None


def test_reviser_stops_on_bool_and_choice_flags():
    choice = TaskSpec("c", "mlp-gelu", "d", [Flag("model.mlp", "choice", "relu2", "gelu")])
    assert make_reviser("none").revise(_TASK, _analysis("noise"), []) is None
    assert make_reviser("none").revise(choice, _analysis("theory"), []) is None


def test_reviser_stops_when_an_int_range_is_spent():
    task = TaskSpec("w", "width-5", "d", [Flag("model.width", "int", 8, 5, low=4, high=6)])
    hist = [(dataclasses.replace(task, flags=[task.flags[0].with_on(4)]), _analysis("noise"))]
    nxt = make_reviser("none").revise(task, _analysis("noise"), hist)
    assert nxt is not None and nxt.flags[0].on == 6
    assert make_reviser("none").revise(nxt, _analysis("noise"), [*hist, (task, _analysis("noise"))]) is None


# --- role specs ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("make, spec, words", [
    (make_planner, "gpt4", "unknown planner 'gpt4'; use one of: none"),
    (make_judge, "llm", "unknown judge 'llm'; use one of: rules"),
    (make_analyzer, "x", "unknown analyzer 'x'; use one of: rules"),
    (make_reviser, "tpe", "unknown reviser 'tpe'; use one of: none"),
    (make_coder, "vim", "unknown coder 'vim'; use one of: none, patch:FILE, cmd:PATH, claude, codex, aider"),
    (make_coder, "patch:", "coder 'patch:' needs its argument: write patch:FILE"),
    (make_coder, "none:x", "coder 'none:x' takes no argument"),
    (make_planner, "none:3", "planner 'none:3' takes no argument"),
])
def test_role_spec_errors_are_one_line_listing_valid_specs(make, spec, words):
    with pytest.raises(ConfigError) as e:
        make(spec)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_role_specs_make_the_rule_based_roles():
    assert make_planner("none").spec == "none" and make_judge(" rules ").spec == "rules"
    assert make_analyzer("rules").spec == "rules" and make_reviser("none", seed=4).seed == 4
    coder = make_coder("none")
    assert coder.spec == "none" and not coder.edits


def test_planner_design_lists_each_task():
    ctx = _ctx(idea="try things")
    tasks = make_planner("none").propose(ctx, 2)
    design = make_planner("none").design(ctx, tasks)
    assert design.tasks == tasks and design.metrics == {"primary": "val_loss", "direction": "lower",
                                                         "also": ["tokens_per_s", "peak_memory_mb"]}
    assert design.plan_md.startswith("# Plan: try things")
    for t in tasks:
        assert f"## {t.name}" in design.plan_md and f"`{t.flags[0].key}`" in design.plan_md
    assert yaml.safe_load(yaml.safe_dump(design.to_dict()))["tasks"][0]["name"] == tasks[0].name
