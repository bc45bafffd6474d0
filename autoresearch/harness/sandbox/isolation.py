"""Isolation levels: how an executor is launched (bwrap command line), and what a level does and does not cover.

`strict`: the executor is pid 1 of its own bwrap namespace set: no network, a read-only minimal root (/usr, the
Python installation, two harness files; never the user's home or the project), a size-capped private tmpfs as
scratch, a new pid namespace, die-with-parent, a scrubbed environment. Jobs drop to an unprivileged uid, get rlimits,
no_new_privs and the seccomp filters. The level is computed from what the executor *reports* it sees from inside
(pid 1? only loopback? are the probe paths invisible? did seccomp build?), not from what was requested.

`reduced`: used only on explicit opt-in when bwrap or user namespaces are missing: the executor is a plain
subprocess; jobs still get rlimits, seccomp, the uid drop when root, and a network namespace when it can be made.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from autoresearch.harness.sandbox.config import SandboxConfig

__all__ = [
    "Isolation",
    "STRICT_FEATURES",
    "NOT_COVERED_ALWAYS",
    "FEATURE_GAPS",
    "bwrap_status",
    "isolation_from_features",
    "launch_command",
    "init_message",
    "INSTALL_HINT",
]

INSTALL_HINT = "install bubblewrap (`apt-get install -y bubblewrap` as root) or pass --allow-reduced"

# Every one of these must be reported true by the executor for the level to be strict.
STRICT_FEATURES = (
    "pid_namespace",
    "no_network",
    "hidden_paths",
    "scratch_tmpfs",
    "seccomp",
    "unprivileged_jobs",
    "rlimits",
)

NOT_COVERED_ALWAYS = (
    "the kernel is shared: an exploit through an allowed syscall escapes (seccomp here is a deny-list)",
    "CPU/timing side channels; /proc still shows host-wide figures (meminfo, cpuinfo, loadavg, kernel version)",
    "memory is bounded by RLIMIT_AS per process plus the scratch tmpfs (memfd and SysV shm denied), not by a cgroup",
    "result forgery by code that deliberately introspects the harness in-process (frame walking, ctypes writes, "
    "objects whose __eq__ is always True); naive hacks (sys.exit, os._exit, printed or injected results) are caught",
    "/usr and the Python installation are readable (read-only), as on any machine the code would run on",
)

FEATURE_GAPS = {
    "pid_namespace": "jobs can see host processes in /proc; only the seccomp kill guard and the uid drop stop "
    "signals to them, and with allow_fork a grandchild that calls setsid can outlive its job",
    "no_network": "no network namespace: only the seccomp socket ban blocks network access",
    "hidden_paths": "the host file system is visible read-only: the home directory, the project and other "
    "world-readable files can be read, and world-writable places (/tmp, /dev/shm) can be written",
    "scratch_tmpfs": "scratch space is not a size-capped tmpfs: only RLIMIT_FSIZE (per file) bounds disk use",
    "seccomp": "no seccomp filter: sockets, exec, ptrace, namespaces and signals to other processes are not blocked",
    "unprivileged_jobs": "jobs run as root",
    "rlimits": "no resource limits",
}


@dataclass(frozen=True)
class Isolation:
    """The level a pool actually runs at, the layers its executors reported, and what is not covered."""

    level: str
    features: dict[str, bool]
    not_covered: tuple[str, ...]

    def to_dict(self) -> dict:
        return {"level": self.level, "features": dict(self.features), "not_covered": list(self.not_covered)}

    def describe(self) -> str:
        lines = [f"sandbox isolation: {self.level}"]
        lines += [f"  not covered: {g}" for g in self.not_covered]
        return "\n".join(lines)


def isolation_from_features(mode: str, features: dict[str, bool]) -> Isolation:
    """Level from what the executor reported; strict needs the strict launch and every strict feature."""
    feats = {k: bool(features.get(k, False)) for k in STRICT_FEATURES}
    missing = [k for k in STRICT_FEATURES if not feats[k]]
    level = "strict" if mode == "strict" and not missing else "reduced"
    return Isolation(level, feats, tuple(FEATURE_GAPS[k] for k in missing) + NOT_COVERED_ALWAYS)


@functools.lru_cache(maxsize=1)
def bwrap_status() -> tuple[bool, str]:
    """(True, path) when bwrap exists and can create the namespaces strict needs here; else (False, why)."""
    path = shutil.which("bwrap")
    if path is None:
        return False, "bwrap not found on PATH"
    probe = [path, *_namespace_args(), "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "true"]
    try:
        r = subprocess.run(probe, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, f"bwrap failed to run: {e}"
    if r.returncode != 0:
        return False, f"bwrap cannot create namespaces here: {r.stderr.strip().splitlines()[-1:] or r.returncode}"
    return True, path


def _namespace_args() -> list[str]:
    args = ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    if os.getuid() != 0:
        # Unprivileged bwrap needs a user namespace; --disable-userns stops jobs from nesting another one.
        args += ["--unshare-user", "--disable-userns"]
    return args


def _harness_files() -> tuple[Path, ...]:
    """The files the executor runs from, copied under /sandbox at the strict level (the executor first)."""
    here = Path(__file__).resolve().parent
    return here / "executor.py", here / "child.py", here / "seccomp_filter.py"


def _pyseccomp_file() -> Path | None:
    """pyseccomp is one pure-Python module (ctypes over libseccomp): copied next to the harness files."""
    spec = importlib.util.find_spec("pyseccomp")
    return Path(spec.origin) if spec is not None and spec.origin and spec.origin.endswith(".py") else None


def _base_interpreter() -> str:
    """The real interpreter behind sys.executable (a venv's python is a link to, or a copy of, it)."""
    return os.path.realpath(getattr(sys, "_base_executable", "") or sys.executable)


def _python_roots(strict: bool = False) -> list[str]:
    """Directories the interpreter needs, outermost first, without ones already under /usr. Strict runs the base
    interpreter with -S (no site-packages), so neither the venv nor pyseccomp's directory is needed there."""
    dirs = {sys.base_prefix, sys.base_exec_prefix, str(Path(_base_interpreter()).parent.parent)}
    if not strict:
        dirs |= {sys.prefix, sys.exec_prefix, str(Path(os.path.realpath(sys.executable)).parent.parent)}
        spec = importlib.util.find_spec("pyseccomp")
        if spec is not None and spec.origin:
            dirs.add(str(Path(spec.origin).parent))
    real = sorted({os.path.realpath(d) for d in dirs if d and os.path.isdir(d)}, key=len)
    keep: list[str] = []
    for d in real:
        if d == "/" or d == "/usr" or d.startswith("/usr/"):
            continue
        if not any(d == k or d.startswith(k + "/") for k in keep):
            keep.append(d)
    return keep


def _site_dirs(roots: list[str]) -> list[str]:
    """site-packages directories inside what strict mounts (/usr, the interpreter): covered by an empty tmpfs, since
    an editable install's finder there names the checkout and -S alone leaves the files readable."""
    import site

    prefixes = {sys.base_prefix, sys.base_exec_prefix, "/usr", "/usr/local"}
    found = {os.path.realpath(d) for d in site.getsitepackages(list(prefixes)) if os.path.isdir(d)}
    inside = [d for d in found if any(d.startswith(r + "/") for r in ["/usr", *roots])]
    return sorted(inside)


def _mount_probes(roots: list[str]) -> list[str]:
    """Host paths that must not appear in the sandbox's /proc/self/mountinfo: the checkout and the venv.
    A path that holds a mounted root (an interpreter inside the checkout) cannot be hidden and is left out."""
    here = Path(__file__).resolve()
    cands = {str(here.parents[3])}
    if sys.prefix != sys.base_prefix:
        cands.add(os.path.realpath(sys.prefix))
    return sorted(c for c in cands if not any(r == c or r.startswith(c + "/") for r in ["/usr", *roots]))


def _probe_paths(mounted: list[str]) -> list[str]:
    """Host files that must be invisible inside strict: the harness source, a file in cwd and in home."""
    candidates = [str(_harness_files()[0])]
    for base in (Path.cwd(), Path.home()):
        try:
            f = next((p for p in sorted(base.iterdir()) if p.is_file() and not p.is_symlink()), None)
        except OSError:
            f = None
        if f is not None:
            candidates.append(str(f.resolve()))
    return [c for c in candidates if not any(c == m or c.startswith(m + "/") for m in mounted)]


def launch_command(
    mode: str, cfg: SandboxConfig, scratch: str | None = None
) -> tuple[list[str], dict[str, str], list[int]]:
    """(argv, env, fds) that start one executor at `mode`; `scratch` is the host scratch dir (reduced only).
    `fds` are open read-only files the command reads (bwrap copies them in): pass them to the child (pass_fds) and
    close them after it has started. The executor then reads `init_message(mode, cfg)` on stdin."""
    files = _harness_files()
    executor = files[0]
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        # Fixed hash seed: the same program gives the same result on every run (set/dict order of str keys).
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "USER": "sandbox",
    }
    tail = [] if cfg.seccomp else ["--no-seccomp"]
    py = [sys.executable, "-s", "-B"]
    if mode == "reduced":
        if scratch is None:
            raise ValueError("reduced mode needs a host scratch directory")
        spec = importlib.util.find_spec("pyseccomp")
        if spec is not None and spec.origin:
            tail += ["--pypath", str(Path(spec.origin).parent)]
        roots = [a for d in _python_roots() for a in ("--python-root", d)]
        argv = [*py, str(executor), "--mode", "reduced", "--scratch", scratch, *roots, *tail]
        return argv, {**env, "HOME": scratch}, []

    ok, bwrap = bwrap_status()
    if not ok:
        raise OSError(bwrap)
    roots = _python_roots(strict=True)
    args = [bwrap, "--die-with-parent", "--new-session", "--as-pid-1", *_namespace_args()]
    if os.getuid() == 0:
        # Root runs bwrap without a user namespace and would keep every capability: keep only what the executor
        # needs to drop jobs to another uid, signal them, and own/clean their scratch dirs.
        args += ["--cap-drop", "ALL"]
        for cap in ("CAP_SETUID", "CAP_SETGID", "CAP_KILL", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER"):
            args += ["--cap-add", cap]
    args += ["--ro-bind", "/usr", "/usr"]
    for d in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        p = Path("/") / d
        if p.is_symlink():
            args += ["--symlink", os.readlink(p), str(p)]
        elif p.is_dir():
            args += ["--ro-bind", str(p), str(p)]
    for f in ("/etc/ld.so.cache", "/etc/localtime"):
        args += ["--ro-bind-try", f, f]
    # Scratch first: a later mount shadows an earlier one, and an interpreter may live under /tmp.
    args += ["--perms", "0755", "--size", str(cfg.scratch_mb << 20), "--tmpfs", "/tmp"]
    # bwrap creates missing parents of a mount point as 0700 root, which the job uid could not traverse; make them
    # 0711 first (traversable, not listable: /root shows nothing but the way to the interpreter).
    made: set[str] = set()
    for target in [*roots, "/sandbox/x"]:
        for parent in reversed(Path(target).parents[:-1]):
            if str(parent) not in made and str(parent) != "/usr":
                made.add(str(parent))
                args += ["--perms", "0711", "--dir", str(parent)]
    for d in roots:
        args += ["--ro-bind", d, d]
    for d in _site_dirs(roots):
        args += ["--perms", "0555", "--size", "4096", "--tmpfs", d]
    # Harness files are *copied* into the sandbox's own root (bwrap --file), not bind-mounted: a bind mount's source
    # path shows in /proc/self/mountinfo, and it would name the checkout (issue 8). Same for pyseccomp (in a venv).
    fds: list[int] = []
    pyseccomp = _pyseccomp_file()
    for f in [*files, *([pyseccomp] if pyseccomp else [])]:
        fds.append(os.open(f, os.O_RDONLY | os.O_CLOEXEC))
        args += ["--perms", "0444", "--file", str(fds[-1]), f"/sandbox/{f.name}"]
    args += ["--dev", "/dev", "--proc", "/proc"]
    args += ["--remount-ro", "/", "--clearenv", "--hostname", "sandbox", "--chdir", "/tmp"]
    for k, v in {**env, "HOME": "/tmp"}.items():
        args += ["--setenv", k, v]
    # The base interpreter with -S: no site-packages, so no venv, no .pth files, no editable finder naming the
    # checkout; jobs get the standard library only (all HumanEval/MBPP need).
    args += [_base_interpreter(), "-s", "-S", "-B", "/sandbox/executor.py", "--mode", "strict", "--scratch", "/tmp"]
    args += tail
    return args, {"PATH": env["PATH"]}, fds


def init_message(mode: str, cfg: SandboxConfig) -> dict:
    """The first frame an executor reads: its limits, and (strict) host files it must not be able to see."""
    if mode != "strict":
        return {"limits": cfg.limits(), "probe_hidden": [], "probe_mounts": []}
    roots = _python_roots(strict=True)
    return {"limits": cfg.limits(), "probe_hidden": _probe_paths(["/usr", *roots]), "probe_mounts": _mount_probes(roots)}
