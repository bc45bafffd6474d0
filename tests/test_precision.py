"""`train.precision`: auto resolves to bf16 only where the device computes it natively; the choice is recorded.

Issue 8 §1: on a CPU without AVX-512-BF16/AMX, bf16 autocast was the default and trained 4-18x slower than fp32.
CPU detection is tested with fake /proc/cpuinfo texts both ways, the CUDA branch with a monkeypatched torch.cuda.
"""

from __future__ import annotations

import copy

import pytest
import torch

from autoresearch.harness import precision as P
from autoresearch.harness.precision import autocast, cpu_bf16_flags, resolve_precision
from autoresearch.harness.registry import new_experiment

# The flags of the 2-core AMD EPYC (AVX2, no AVX-512) where bf16 matmuls were 18x slower than fp32 (shortened).
EPYC_AVX2 = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC
flags\t\t: fpu vme de pse tsc msr sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 bmi2 sha_ni
bugs\t\t: sysret_ss_attrs spectre_v1 spectre_v2
"""
# Sapphire Rapids: AVX-512-BF16 and AMX.
XEON_AMX = """processor\t: 0
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse2 avx avx2 avx512f avx512bw avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8
"""
# Zen 4 / Cooper Lake: AVX-512-BF16 without AMX.
ZEN4_AVX512BF16 = "processor\t: 0\nflags\t\t: sse2 avx2 avx512f avx512_bf16\n"
AMX_ONLY = "processor\t: 0\nflags\t\t: sse2 avx2 amx_bf16 amx_tile\n"
# The names appear, but not on a `flags` line (and as substrings of other flags): not native bf16.
DECOY = "processor\t: 0\nflags\t\t: sse2 avx2 xavx512_bf16x\nvmx flags\t: avx512_bf16\nbugs\t\t: amx_bf16\n"

CPU = torch.device("cpu")


def _info(text: str | None):
    return lambda: text


@pytest.fixture(autouse=True)
def _fresh_warnings(monkeypatch):
    monkeypatch.setattr(P, "_warned", set())


# --- the decision -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "flags"), [
    (EPYC_AVX2, []), (XEON_AMX, ["avx512_bf16", "amx_bf16"]), (ZEN4_AVX512BF16, ["avx512_bf16"]),
    (AMX_ONLY, ["amx_bf16"]), (DECOY, []), ("", []),
], ids=["epyc_avx2", "xeon_amx", "zen4", "amx_only", "decoy", "empty"])
def test_cpu_bf16_flags_read_only_the_flags_lines(text, flags):
    assert cpu_bf16_flags(text) == flags


def test_auto_on_a_cpu_without_native_bf16_is_fp32_with_the_reason():
    c = resolve_precision("auto", CPU, _info(EPYC_AVX2))
    assert c.precision == "fp32" and c.requested == "auto"
    assert c.reason == "auto: CPU lacks avx512_bf16/amx_bf16 -> fp32"


@pytest.mark.parametrize(("text", "why"), [
    (XEON_AMX, "CPU has avx512_bf16/amx_bf16"), (ZEN4_AVX512BF16, "CPU has avx512_bf16"), (AMX_ONLY, "CPU has amx_bf16"),
], ids=["xeon_amx", "zen4", "amx_only"])
def test_auto_on_a_cpu_with_native_bf16_is_bf16(text, why):
    c = resolve_precision("auto", CPU, _info(text))
    assert c.precision == "bf16" and c.reason == f"auto: {why} -> bf16"


@pytest.mark.parametrize("text", [None, DECOY, ""], ids=["no_proc", "decoy", "empty"])
def test_auto_without_evidence_is_fp32(text):
    c = resolve_precision("auto", CPU, _info(text))
    assert c.precision == "fp32"
    assert ("cannot read /proc/cpuinfo" in c.reason) == (text is None)


def test_missing_proc_cpuinfo_reads_as_none(tmp_path):
    assert P.read_cpuinfo(tmp_path / "absent") is None
    (tmp_path / "cpuinfo").write_text(XEON_AMX)
    assert cpu_bf16_flags(P.read_cpuinfo(tmp_path / "cpuinfo") or "") == ["avx512_bf16", "amx_bf16"]


def test_explicit_choices_are_honoured():
    assert resolve_precision("fp32", CPU, _info(XEON_AMX)).precision == "fp32"
    assert resolve_precision("fp32", CPU, _info(XEON_AMX)).reason == "explicit fp32"
    assert resolve_precision("bf16", CPU, _info(XEON_AMX)).precision == "bf16"
    slow = resolve_precision("bf16", CPU, _info(EPYC_AVX2))
    assert slow.precision == "bf16" and "CPU lacks avx512_bf16/amx_bf16" in slow.reason and "slower" in slow.reason


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="got 'bf61'"):
        resolve_precision("bf61", CPU, _info(XEON_AMX))


def test_explicit_bf16_without_native_support_warns_once(capfd):
    for _ in range(3):
        resolve_precision("bf16", CPU, _info(EPYC_AVX2))
    err = capfd.readouterr().err
    assert err.count("warning: train.precision=bf16") == 1 and len(err.strip().splitlines()) == 1
    assert "CPU lacks avx512_bf16/amx_bf16" in err and "train.precision=auto" in err


@pytest.mark.parametrize(("requested", "text"), [("bf16", XEON_AMX), ("auto", EPYC_AVX2), ("fp32", EPYC_AVX2)],
                         ids=["bf16_native", "auto", "fp32"])
def test_no_warning_where_bf16_is_native_or_not_asked_for(capfd, requested, text):
    resolve_precision(requested, CPU, _info(text))
    assert capfd.readouterr().err == ""


# --- the CUDA branch (monkeypatched: the check never needs a GPU) -------------------------------------------------


@pytest.fixture
def fake_cuda(monkeypatch):
    """A fake device: `native` = compute capability >= 8; below it bf16 exists only by emulation (a T4, a V100)."""
    state = {"native": True, "calls": []}

    def is_bf16_supported(including_emulation: bool = True) -> bool:
        state["calls"].append(including_emulation)
        return state["native"] or including_emulation

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", is_bf16_supported)
    return state


def test_auto_on_cuda_follows_native_bf16_not_emulation(fake_cuda):
    gpu = torch.device("cuda")
    c = resolve_precision("auto", gpu, _info(None))
    assert c.precision == "bf16" and c.reason == "auto: cuda has native bf16 -> bf16"
    fake_cuda["native"] = False
    c = resolve_precision("auto", gpu, _info(XEON_AMX))  # the host CPU does not matter for a GPU run
    assert c.precision == "fp32" and "lacks native bf16" in c.reason
    assert fake_cuda["calls"] == [False, False]


def test_explicit_bf16_on_an_old_gpu_warns_once(fake_cuda, capfd):
    fake_cuda["native"] = False
    for _ in range(2):
        assert resolve_precision("bf16", torch.device("cuda:0"), _info(None)).precision == "bf16"
    assert capfd.readouterr().err.count("warning:") == 1


# --- autocast takes only a resolved precision -------------------------------------------------------------------


def test_autocast_never_takes_auto():
    with pytest.raises(ValueError, match="resolved precision"):
        autocast(CPU, "auto")
    a, b = torch.randn(4, 8), torch.randn(8, 4)
    with autocast(CPU, "bf16"):
        assert (a @ b).dtype == torch.bfloat16
    with autocast(CPU, "fp32"):
        assert (a @ b).dtype == torch.float32


def test_lm_evaluate_refuses_an_unresolved_precision(micro_cfg):
    from autoresearch.testbeds.common.gpt import GPT
    from autoresearch.testbeds.lm.evaluate import evaluate

    model = GPT(micro_cfg.model, 64)
    batch = (torch.zeros(1, 8, dtype=torch.long), torch.zeros(1, 8, dtype=torch.long))
    with pytest.raises(ValueError, match="'auto'"):
        evaluate(model, [batch], [1] * 64, CPU, "auto")


# --- the default, and what a run records ------------------------------------------------------------------------


def test_every_preset_defaults_to_auto():
    from autoresearch.testbeds.codegen.config import CODEGEN_PRESETS
    from autoresearch.testbeds.lm.config import PRESETS

    assert {n: f().train.precision for n, f in PRESETS.items()} == {n: "auto" for n in PRESETS}
    assert {n: f().train.precision for n, f in CODEGEN_PRESETS.items()} == {n: "auto" for n in CODEGEN_PRESETS}


@pytest.mark.parametrize(("text", "want"), [(EPYC_AVX2, "fp32"), (XEON_AMX, "bf16")], ids=["avx2", "amx"])
def test_lm_run_records_precision_and_reason(micro_cfg, tmp_path, monkeypatch, text, want):
    from autoresearch.testbeds.lm.train import train

    monkeypatch.setattr(P, "read_cpuinfo", _info(text))
    micro_cfg.train.train_tokens = 4 * 32 * 2
    exp = new_experiment(tmp_path)
    res = train(micro_cfg, exp)
    assert res["status"] == "ok" and res["precision"] == want
    assert res["precision_reason"].startswith("auto: CPU ") and res["precision_reason"].endswith(f"-> {want}")
    saved = exp.read_results()
    assert (saved["precision"], saved["precision_reason"]) == (want, res["precision_reason"])
    cfg = exp.read_config()
    assert cfg["train"]["precision"] == "auto"  # what was asked for stays in the config ...
    assert cfg["meta"]["precision"] == {"precision": want, "requested": "auto", "reason": res["precision_reason"]}


def test_auto_trains_exactly_like_the_precision_it_resolves_to(micro_cfg, tmp_path, monkeypatch):
    from autoresearch.testbeds.lm.train import train

    monkeypatch.setattr(P, "read_cpuinfo", _info(EPYC_AVX2))
    micro_cfg.train.train_tokens = 4 * 32 * 3
    auto = train(copy.deepcopy(micro_cfg), new_experiment(tmp_path))
    micro_cfg.train.precision = "fp32"
    fp32 = train(copy.deepcopy(micro_cfg), new_experiment(tmp_path))
    micro_cfg.train.precision = "bf16"
    bf16 = train(micro_cfg, new_experiment(tmp_path))
    assert auto["val_loss"] == fp32["val_loss"] != bf16["val_loss"]
    assert (fp32["precision_reason"], bf16["precision"]) == ("explicit fp32", "bf16")


def test_explicit_bf16_run_warns_once_not_per_step(micro_cfg, tmp_path, monkeypatch, capfd):
    from autoresearch.testbeds.lm.train import train

    monkeypatch.setattr(P, "read_cpuinfo", _info(EPYC_AVX2))
    micro_cfg.train.precision = "bf16"
    micro_cfg.train.train_tokens = 4 * 32 * 4
    micro_cfg.eval.every = 1
    res = train(micro_cfg, new_experiment(tmp_path))
    assert res["status"] == "ok" and res["precision"] == "bf16" and "slower" in res["precision_reason"]
    assert capfd.readouterr().err.count("warning: train.precision=bf16") == 1


def test_resume_keeps_the_precision_the_run_started_with(micro_cfg, tmp_path, monkeypatch):
    """Resolved once per run: a run begun in bf16 resumes in bf16 even where auto would now pick fp32."""
    from autoresearch.testbeds.lm.train import train

    monkeypatch.setattr(P, "read_cpuinfo", _info(XEON_AMX))
    micro_cfg.train.train_tokens = 4 * 32 * 6
    micro_cfg.train.checkpoint_every = 3
    full = new_experiment(tmp_path)
    train(copy.deepcopy(micro_cfg), full)

    def crash_at_4(step, record):
        if step == 4:
            raise RuntimeError("simulated crash")

    broken = new_experiment(tmp_path)
    with pytest.raises(RuntimeError):
        train(copy.deepcopy(micro_cfg), broken, on_step=crash_at_4)
    monkeypatch.setattr(P, "read_cpuinfo", _info(EPYC_AVX2))
    res = train(copy.deepcopy(micro_cfg), broken, resume=True)
    assert res["precision"] == "bf16" and res["precision_reason"] == "auto: CPU has avx512_bf16/amx_bf16 -> bf16"
    assert [r["loss"] for r in broken.read_log()] == [r["loss"] for r in full.read_log()]


def test_codegen_run_records_precision_and_reason(codegen_micro_cfg, tmp_path, monkeypatch):
    from autoresearch.testbeds.codegen.train import train

    monkeypatch.setattr(P, "read_cpuinfo", _info(EPYC_AVX2))
    codegen_micro_cfg.eval.score = False
    codegen_micro_cfg.train.train_tokens = 4 * 96 * 2
    exp = new_experiment(tmp_path)
    res = train(codegen_micro_cfg, exp)
    assert res["status"] == "ok" and res["precision"] == "fp32"
    assert res["precision_reason"] == "auto: CPU lacks avx512_bf16/amx_bf16 -> fp32"
    assert exp.read_config()["meta"]["precision"]["precision"] == "fp32"
    assert exp.read_results()["precision_reason"] == res["precision_reason"]
