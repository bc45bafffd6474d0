"""Machine facts in one place (harness/provenance.py): the CPU model, memory, the regression fingerprint (which
includes what `train.precision=auto` resolves to), and no second reader of /proc/cpuinfo or /proc/meminfo."""

from __future__ import annotations

import ast
from pathlib import Path

import autoresearch.harness.precision as P
import autoresearch.harness.provenance as prov

PACKAGE = Path(prov.__file__).resolve().parents[1]
XEON_AMX = ("processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8480+\n"
            "flags\t\t: fpu sse2 avx avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n")
EPYC_AVX2 = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx avx2 fma\n"


def test_cpu_model_reads_the_model_name_line():
    assert prov.cpu_model(XEON_AMX) == "Intel(R) Xeon(R) Platinum 8480+"
    assert prov.cpu_model(EPYC_AVX2) == "AMD EPYC"
    assert prov.cpu_model("processor\t: 0\n")  # no model line (e.g. some ARM boards): platform's answer, not ""


def test_fingerprint_keys_and_the_precision_auto_resolves_to(monkeypatch):
    monkeypatch.setattr(prov, "read_cpuinfo", lambda: XEON_AMX)
    monkeypatch.setattr(P, "read_cpuinfo", lambda: XEON_AMX)
    fp = prov.machine_fingerprint()
    assert set(fp) == {"python", "torch", "numpy", "machine", "cpu", "precision_auto"}
    assert fp["cpu"] == "Intel(R) Xeon(R) Platinum 8480+" and fp["precision_auto"] == "bf16"
    monkeypatch.setattr(prov, "read_cpuinfo", lambda: EPYC_AVX2)
    monkeypatch.setattr(P, "read_cpuinfo", lambda: EPYC_AVX2)
    other = prov.machine_fingerprint()
    assert other["precision_auto"] == "fp32" and other["cpu"] == "AMD EPYC"  # another machine: another trace key


def test_hardware_info_uses_the_same_cpu_model_and_memory(monkeypatch):
    monkeypatch.setattr(prov, "read_cpuinfo", lambda: XEON_AMX)
    assert prov.hardware_info("cpu")["cpu"] == "Intel(R) Xeon(R) Platinum 8480+"
    mem = prov.memory_gb()
    assert mem is None or mem > 0


def test_no_other_module_reads_machine_facts():
    facts = {"/proc/cpuinfo", "/proc/meminfo", "SC_PHYS_PAGES"}
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "provenance.py":
            continue
        tree = ast.parse(path.read_text(), str(path))
        docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                      if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef)) and n.body
                      and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in facts and id(node) not in docstrings:
                found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.value}")
            if isinstance(node, ast.Attribute) and node.attr == "processor" and getattr(node.value, "id", "") == \
                    "platform":
                found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} platform.processor")
    assert not found, "use autoresearch.harness.provenance (cpu_model, memory_gb, machine_fingerprint): " + \
        "; ".join(found)
