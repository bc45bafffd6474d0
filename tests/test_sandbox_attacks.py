"""One test per attack on the sandbox: each asserts the attack is blocked AND that a normal job passes right after.

Outer limits keep a sandbox bug from taking the host down: pytest-timeout per test, and the pool starts every
executor under hard rlimits (address space, no core dumps, NPROC for the job uid; see pool.py). Attacks run at the
strict level; CI installs bubblewrap, so there these tests fail rather than skip when it is missing.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from autoresearch.harness.sandbox import Job, Pool, ProgramResult, SandboxConfig, bwrap_status

_OK, _WHY = bwrap_status()
if not _OK and not os.environ.get("CI"):
    pytest.skip(f"strict sandbox unavailable here ({_WHY}); CI installs bubblewrap", allow_module_level=True)

pytestmark = [pytest.mark.sandbox, pytest.mark.timeout(60)]

SECRET = "AUTORESEARCH_TEST_SECRET"
REPO = Path(__file__).resolve().parents[1]
EXECUTOR = REPO / "autoresearch" / "harness" / "sandbox" / "executor.py"
TEST_S = 1.0  # per-test limit of the attack pool
JOB_S = 2.5  # whole-job limit of the attack pool


@pytest.fixture(scope="module")
def pool():
    os.environ[SECRET] = "hunter2"  # set before the executors start: the scrubbed environment must not carry it
    cfg = SandboxConfig(workers=2, test_timeout_s=TEST_S, program_timeout_s=JOB_S, memory_mb=512, max_processes=32)
    try:
        with Pool(cfg) as p:
            assert p.isolation is not None and p.isolation.level == "strict", p.isolation
            yield p
    finally:
        os.environ.pop(SECRET, None)


@pytest.fixture(scope="module")
def solo():
    """One executor, so consecutive jobs are known to run in the same namespace."""
    with Pool(SandboxConfig(workers=1, test_timeout_s=TEST_S, program_timeout_s=JOB_S)) as p:
        yield p


def attack(pool: Pool, program: str, tests: tuple[str, ...] = ("assert True",)) -> ProgramResult:
    return pool.run(Job(program=program, tests=tests))


def assert_healthy(pool: Pool) -> None:
    r = pool.run(Job(program="def f(x):\n    return 2 * x\n", tests=("assert f(2) == 4", "assert f(3) == 6")))
    assert r.passed and [t.status for t in r.tests] == ["pass", "pass"], r


def blocked(r: ProgramResult, *exc_types: str) -> None:
    """The attack did not succeed: not passed, and failed with one of `exc_types` (when given)."""
    assert not r.passed, r
    f = r.first_failure
    assert f is not None
    if exc_types:
        assert f.exc_type in exc_types, (f, r.stdout)


def tree(pid: int) -> list[int]:
    """`pid` and all its descendants (host view)."""
    out = [pid]
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                for child in f.read().split():
                    out += tree(int(child))
    except OSError:
        pass
    return out


def job_processes(pool: Pool) -> list[int]:
    """Processes under the pool's executors other than bwrap and the executor itself (none between jobs)."""
    return [p for pid in pool.executor_pids() for p in tree(pid)[2:]]


# --- network ------------------------------------------------------------------------------------------------------
def test_tcp_connect_to_host_listener_is_blocked(pool):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    srv.settimeout(0.5)
    port = srv.getsockname()[1]
    try:
        r = attack(pool, f"import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=1)")
        blocked(r, "PermissionError", "ConnectionRefusedError", "OSError")
        with pytest.raises(TimeoutError):
            srv.accept()  # nothing ever arrived on the host side
    finally:
        srv.close()
    assert_healthy(pool)


def test_dns_lookup_fails(pool):
    blocked(attack(pool, "import socket\nsocket.getaddrinfo('pypi.org', 443)"), "gaierror", "PermissionError")
    assert_healthy(pool)


def test_http_request_fails(pool):
    r = attack(pool, "import urllib.request\nurllib.request.urlopen('http://pypi.org/simple/', timeout=2)")
    blocked(r, "URLError", "PermissionError")
    assert_healthy(pool)


def test_unix_socketpair_is_blocked(pool):
    blocked(attack(pool, "import socket\nsocket.socketpair()"), "PermissionError")
    assert_healthy(pool)


def test_raw_socket_syscall_via_ctypes_is_blocked(pool):
    r = attack(
        pool,
        "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "fd = libc.syscall(41, 2, 1, 0)  # socket(AF_INET, SOCK_STREAM, 0)\n"
        "assert fd >= 0, ('errno', ctypes.get_errno())",
    )
    blocked(r, "AssertionError")
    assert "'errno', 1" in r.program.message  # EPERM from the seccomp filter
    assert_healthy(pool)


# --- file system --------------------------------------------------------------------------------------------------
def test_writing_outside_scratch_fails(pool):
    before = hashlib.sha256(EXECUTOR.read_bytes()).hexdigest()
    targets = ["/usr/pwned", "/pwned", "/tmp/pwned", "/dev/shm/pwned", "/sandbox/executor.py", str(REPO / "pwned")]
    prog = (
        "import os\nok = []\n"
        f"for p in {targets!r}:\n"
        "    try:\n        open(p, 'a').write('x')\n        ok.append(p)\n    except OSError:\n        pass\n"
        "assert ok == [], ok\nopen('inside.txt', 'w').write('scratch is writable')\n"
    )
    r = attack(pool, prog)
    assert r.passed, r  # every write outside failed and the scratch dir was writable
    assert not (REPO / "pwned").exists()
    assert hashlib.sha256(EXECUTOR.read_bytes()).hexdigest() == before
    assert_healthy(pool)


def test_reading_the_repo_fails(pool):
    paths = [str(Path(__file__).resolve()), str(REPO / "pyproject.toml"), str(EXECUTOR)]
    r = attack(pool, f"for p in {paths!r}:\n    open(p).read()")
    blocked(r, "FileNotFoundError", "PermissionError")
    # Not even the names: the executor's command line (world-readable /proc/1/cmdline) carries no host paths.
    r = attack(pool, f"assert {str(REPO)!r}.encode() not in open('/proc/1/cmdline', 'rb').read()")
    assert r.passed, r
    assert_healthy(pool)


def test_reading_home_fails(pool):
    home = Path.home()
    probe = next((str(p) for p in sorted(home.iterdir()) if p.is_file()), str(home / ".bashrc"))
    r = attack(
        pool,
        f"import os\ntry:\n    print(os.listdir({str(home)!r}))\nexcept OSError:\n    pass\nopen({probe!r}).read()",
    )
    blocked(r, "FileNotFoundError", "PermissionError")
    assert_healthy(pool)


def test_environment_is_scrubbed(pool):
    r = attack(pool, f"import os\nassert {SECRET!r} not in os.environ\nassert os.environ['HOME'].startswith('/tmp')")
    assert r.passed, r
    r = attack(pool, "open('/proc/1/environ').read()")  # the executor's environment is out of reach too
    blocked(r, "PermissionError")
    assert_healthy(pool)


def test_filling_the_disk_is_capped(pool):
    r = attack(pool, "i = 0\nwhile True:\n    open(f'f{i}', 'wb').write(b'x' * (8 << 20))\n    i += 1")
    blocked(r, "OSError")
    assert "No space left" in r.program.message or "too large" in r.program.message
    assert_healthy(pool)


def test_single_huge_file_hits_file_size_limit(pool):
    blocked(attack(pool, "open('big', 'wb').write(b'x' * (40 << 20))"), "OSError")
    assert_healthy(pool)


def test_deleting_another_jobs_scratch_fails(pool):
    victim = (
        "import os, time\nopen('mine.txt', 'w').write('keep')\ndeadline = time.time() + 1.5\n"
        "while time.time() < deadline:\n    assert open('mine.txt').read() == 'keep'\n    time.sleep(0.05)\n"
    )
    attacker = (
        "import glob, os, shutil\nhits = glob.glob('/tmp/**/mine.txt', recursive=True)\n"
        "for d in glob.glob('/tmp/*'):\n    shutil.rmtree(d, ignore_errors=True)\nassert hits == [], hits\n"
    )
    fv = pool.submit(Job(program=victim, tests=("assert True",), program_timeout_s=5, test_timeout_s=3))
    time.sleep(0.2)
    fa = pool.submit(Job(program=attacker, tests=("assert True",)))
    assert fa.result().passed  # the other job's scratch was not even visible
    assert fv.result().passed  # and the victim's file survived
    assert_healthy(pool)


def test_scratch_is_fresh_for_each_job(solo):
    assert attack(solo, "open('left.txt', 'w').write('x')").passed
    r = attack(solo, "import os\nassert not os.path.exists('left.txt')\nassert os.listdir('.') == []")
    assert r.passed, r
    assert_healthy(solo)


# --- processes ----------------------------------------------------------------------------------------------------
def test_fork_bomb_is_blocked(pool):
    r = attack(pool, "import os\nwhile True:\n    os.fork()")
    blocked(r, "PermissionError")
    assert job_processes(pool) == []
    assert_healthy(pool)


def test_fork_bomb_with_fork_allowed_is_bounded_and_reaped():
    cfg = SandboxConfig(workers=1, allow_fork=True, max_processes=12, test_timeout_s=TEST_S, program_timeout_s=1.0)
    with Pool(cfg) as p:
        r = attack(p, "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass")
        blocked(r)  # it ran into NPROC and the wall clock, then everything in the namespace was killed
        assert r.status == "timeout"
        assert [len(tree(pid)) for pid in p.executor_pids()] == [2]  # bwrap + executor: every fork was reaped
        assert_healthy(p)


def test_os_system_and_posix_system_fail(pool):
    r = attack(
        pool,
        "import os, posix\nassert os.system('id') != 0\nassert posix.system('touch x') != 0\n"
        "assert not os.path.exists('x')",
    )
    assert r.passed, r  # both returned failure codes and created nothing
    assert_healthy(pool)


def test_subprocess_fails(pool):
    blocked(attack(pool, "import subprocess\nsubprocess.run(['id'])"), "PermissionError")
    assert_healthy(pool)


def test_exec_family_fails(pool):
    r = attack(
        pool,
        "import os\nfor f in (lambda: os.execv('/bin/sh', ['sh']), "
        "lambda: os.posix_spawn('/bin/true', ['true'], {})):\n"
        "    try:\n        f()\n    except PermissionError:\n        continue\n    raise SystemExit('ran')",
    )
    assert r.passed, r
    assert_healthy(pool)


def test_ctypes_execve_and_fork_syscalls_are_blocked(pool):
    r = attack(
        pool,
        "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "assert libc.syscall(59, b'/bin/sh', None, None) == -1 and ctypes.get_errno() == 1\n"
        "assert libc.syscall(57) == -1 and ctypes.get_errno() == 1\n"
        "assert libc.syscall(56, 17, 0, 0, 0, 0) == -1 and ctypes.get_errno() == 1  # clone(SIGCHLD)",
    )
    assert r.passed, r
    assert_healthy(pool)


def test_killing_the_parent_or_pid1_fails(pool):
    r = attack(pool, "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)")
    blocked(r, "PermissionError")
    for sig in ("SIGKILL", "SIGTERM", "SIGINT"):
        blocked(attack(pool, f"import os, signal\nos.kill(1, signal.{sig})"), "PermissionError")
    blocked(attack(pool, "import os, signal\nos.killpg(1, signal.SIGKILL)"), "PermissionError")
    assert_healthy(pool)


def test_kill_minus_one_kills_nothing_outside(pool):
    sentinel = subprocess.Popen(["sleep", "30"], preexec_fn=lambda: (os.setgid(65534), os.setuid(65534)))
    try:
        blocked(attack(pool, "import os, signal\nos.kill(-1, signal.SIGKILL)"), "PermissionError")
        # The raw syscall with garbage in the upper 32 bits (the kernel reads only the low 32 bits: pid -1).
        r = attack(
            pool,
            "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
            "assert libc.syscall(62, ctypes.c_long(0x7fffffffffffffff), 9) == 0, ctypes.get_errno()",
        )
        blocked(r, "AssertionError")
        time.sleep(0.1)
        assert sentinel.poll() is None  # the same-uid process on the host is alive
    finally:
        sentinel.kill()
        sentinel.wait()
    assert_healthy(pool)


def test_kill_minus_one_without_seccomp_is_contained_by_pid_namespace_and_uid():
    """The layers under seccomp: with the filter off, kill(-1) from uid 65534 still reaches nothing outside."""
    sentinel = subprocess.Popen(["sleep", "30"], preexec_fn=lambda: (os.setgid(65534), os.setuid(65534)))
    cfg = SandboxConfig(workers=1, seccomp=False, allow_reduced=True, test_timeout_s=TEST_S, program_timeout_s=JOB_S)
    try:
        with Pool(cfg) as p:
            assert p.isolation.level == "reduced" and p.isolation.features["pid_namespace"]
            r = attack(
                p,
                "import os, signal\ntry:\n    os.kill(-1, signal.SIGKILL)\nexcept ProcessLookupError:\n"
                "    pass\nos.kill(1, signal.SIGKILL)",
            )
            blocked(r, "PermissionError")  # pid 1 (the executor, root) is another uid
            time.sleep(0.1)
            assert sentinel.poll() is None
            assert_healthy(p)
    finally:
        sentinel.kill()
        sentinel.wait()


def test_ptrace_is_blocked(pool):
    r = attack(
        pool,
        "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "assert libc.ptrace(16, 1, 0, 0) == -1  # PTRACE_ATTACH to the executor\n"
        "assert libc.ptrace(0, 0, 0, 0) == -1  # PTRACE_TRACEME",
    )
    assert r.passed, r
    assert_healthy(pool)


def test_raising_rlimits_back_fails(pool):
    r = attack(
        pool,
        "import resource\nfor lim in (resource.RLIMIT_AS, resource.RLIMIT_NPROC, resource.RLIMIT_CPU, "
        "resource.RLIMIT_NOFILE):\n    try:\n"
        "        resource.setrlimit(lim, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))\n"
        "    except (ValueError, PermissionError):\n        continue\n    raise SystemExit(f'raised {lim}')\n"
        "try:\n    resource.prlimit(1, resource.RLIMIT_AS, (1 << 20, 1 << 20))\nexcept PermissionError:\n"
        "    pass\nelse:\n    raise SystemExit('changed the executor limits')",
    )
    assert r.passed, r
    assert_healthy(pool)


def test_regaining_privileges_fails(pool):
    r = attack(
        pool,
        "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "assert os.getuid() == 65534\n"
        "for f in (lambda: os.setuid(0), lambda: os.setgid(0)):\n"
        "    try:\n        f()\n    except PermissionError:\n        continue\n    raise SystemExit('setuid')\n"
        "assert libc.unshare(0x10000000) == -1  # CLONE_NEWUSER would hand out fresh capabilities",
    )
    assert r.passed, r
    assert_healthy(pool)


def test_writing_proc_fails(pool):
    targets = [
        "/proc/sysrq-trigger",
        "/proc/sys/kernel/hostname",
        "/proc/sys/vm/drop_caches",
        "/proc/1/oom_score_adj",
        "/proc/1/mem",
    ]
    prog = (
        f"ok = []\nfor p in {targets!r}:\n    try:\n        open(p, 'w').write('1')\n        ok.append(p)\n"
        "    except OSError:\n        pass\nassert ok == [], ok"
    )
    assert attack(pool, prog).passed
    assert_healthy(pool)


def test_kernel_attack_surface_syscalls_are_blocked(pool):
    # bpf, io_uring_setup, userfaultfd, perf_event_open, keyctl: EPERM without touching the kernel subsystem.
    r = attack(
        pool,
        "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\nbuf = ctypes.create_string_buffer(256)\n"
        "for nr, args in ((321, (0, buf, 0)), (425, (1, buf)), (323, (0,)), (298, (buf, 0, -1, -1, 0)), "
        "(250, (0,))):\n    assert libc.syscall(nr, *args) == -1 and ctypes.get_errno() == 1, nr",
    )
    assert r.passed, r
    assert_healthy(pool)


def test_sysv_ipc_objects_cannot_be_left_behind(pool):
    # shmget / semget / msgget: objects that would outlive the job (memory outside rlimits, cross-job data).
    r = attack(
        pool,
        "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "assert libc.shmget(0, 64 << 20, 0o1666) == -1 and ctypes.get_errno() == 1\n"
        "assert libc.semget(0, 1, 0o1666) == -1 and ctypes.get_errno() == 1\n"
        "assert libc.msgget(0, 0o1666) == -1 and ctypes.get_errno() == 1",
    )
    assert r.passed, r
    assert_healthy(pool)


def test_foreign_abi_syscall_kills_the_process(pool):
    # int 0x80 (i386 ABI) has its own syscall numbers; the filter's arch check kills the process instead.
    r = attack(
        pool,
        "import ctypes, mmap\nbuf = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | "
        "mmap.PROT_EXEC)\nbuf.write(bytes([0xb8, 0x02, 0, 0, 0, 0xcd, 0x80, 0xc3]))  # fork via int 0x80\n"
        "f = ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(buf)))\nf()",
    )
    blocked(r, "Crash")
    assert "SIGSYS" in r.program.message
    assert_healthy(pool)


# --- resources ----------------------------------------------------------------------------------------------------
def test_memory_bomb_is_stopped(pool):
    r = attack(pool, "x = bytearray(8 << 30)")
    assert r.status == "memory", r
    r = attack(pool, "chunks = []\nwhile True:\n    chunks.append(bytearray(16 << 20))")
    assert r.status == "memory", r
    assert_healthy(pool)


def _host_shmem_kib() -> int:
    """Host-wide shared memory (tmpfs, memfd, SysV/POSIX shm pages) from /proc/meminfo, KiB."""
    with open("/proc/meminfo") as f:
        return next(int(ln.split()[1]) for ln in f if ln.startswith("Shmem:"))


def _peak_shmem_while(fut, before: int) -> int:
    """Sample host Shmem until the job finishes; the largest rise over `before`, MiB."""
    peak = before
    while not fut.done():
        peak = max(peak, _host_shmem_kib())
        time.sleep(0.01)
    return (peak - before) >> 10


# Host memory a job may make the host hold besides its address space: the executor's scratch tmpfs (64 MiB default)
# plus slack for whatever else runs on the machine meanwhile. Before the fix, memfds alone raised Shmem by 896 MiB.
SHMEM_BOUND_MIB = 64 + 48


def test_memfd_fallocate_cannot_make_the_host_hold_memory(pool):
    prog = (
        "import os, time\nmade, errs = 0, set()\nfds = []\nfor i in range(56):\n    try:\n"
        "        fd = os.memfd_create(f'm{i}')\n        os.posix_fallocate(fd, 0, 16 << 20)\n"
        "        fds.append(fd)\n        made += 16\n    except OSError as e:\n        errs.add(e.errno)\n"
        "time.sleep(0.5)\nassert made == 0, (made, errs)\nassert errs == {1}, errs  # EPERM from seccomp\n"
        "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "assert libc.syscall(319, b'x', 0) == -1 and ctypes.get_errno() == 1  # raw memfd_create\n"
    )
    before = _host_shmem_kib()
    fut = pool.submit(Job(program=prog, tests=("assert True",), program_timeout_s=5))
    rise = _peak_shmem_while(fut, before)
    r = fut.result()
    assert r.passed, r.first_failure
    assert rise < SHMEM_BOUND_MIB, rise
    assert_healthy(pool)


def test_dev_shm_and_posix_shm_are_not_writable(pool):
    prog = (
        "import os\nfrom multiprocessing import shared_memory\ntry:\n"
        "    shared_memory.SharedMemory(create=True, size=64 << 20)\nexcept OSError:\n    pass\nelse:\n"
        "    raise SystemExit('shm_open worked')\n"
        "for p in ('/dev/shm/fill', '/dev/fill', '/tmp/fill', '/run/fill', '/var/tmp/fill'):\n    try:\n"
        "        open(p, 'wb').write(b'x' * (1 << 20))\n    except OSError:\n        continue\n"
        "    raise SystemExit(f'wrote {p}')\n"
    )
    r = attack(pool, prog)
    assert r.passed, r.first_failure
    assert_healthy(pool)


def test_filling_tmp_scratch_holds_at_most_the_scratch_size(pool):
    prog = (
        "import os, time\nn = 0\ntry:\n    while True:\n        with open(f'f{n}', 'wb') as f:\n"
        "            f.write(b'x' * (4 << 20))\n        n += 1\nexcept OSError:\n    pass\n"
        "st = os.statvfs('.')\nprint(n, st.f_blocks * st.f_frsize >> 20)\ntime.sleep(0.5)\nassert n <= 16, n\n"
    )
    before = _host_shmem_kib()
    fut = pool.submit(Job(program=prog, tests=("assert True",), program_timeout_s=5))
    rise = _peak_shmem_while(fut, before)
    r = fut.result()
    assert r.passed, (r.first_failure, r.stdout)
    assert r.stdout.split()[1] == "64"  # the executor's tmpfs is 64 MiB (scratch_mb), all jobs of it together
    assert rise < SHMEM_BOUND_MIB, rise
    r = attack(pool, "import os\nassert os.listdir('.') == []")  # and the next job starts with it empty
    assert r.passed
    assert_healthy(pool)


def test_mountinfo_shows_no_host_project_or_venv_path(pool):
    import sys

    secrets = [str(REPO), os.path.realpath(sys.prefix)] if sys.prefix != sys.base_prefix else [str(REPO)]
    prog = (
        "import sys\ntexts = []\nfor p in ('/proc/self/mountinfo', '/proc/mounts', '/proc/1/mountinfo', "
        "'/proc/self/mounts'):\n    try:\n        texts.append(open(p).read())\n    except OSError:\n"
        "        pass\nassert len(texts) >= 2, texts\nblob = '\\n'.join(texts) + repr(sys.path) + repr(sys.meta_path)\n"
        f"for s in {secrets!r}:\n    assert s not in blob, s\n"
        "try:\n    import autoresearch\nexcept ImportError:\n    pass\nelse:\n    raise SystemExit('imported')\n"
    )
    r = attack(pool, prog)
    assert r.passed, r.first_failure
    assert pool.isolation.features["hidden_paths"]
    assert_healthy(pool)


def test_thread_bomb_is_bounded(pool):
    r = attack(pool, "import threading, time\nwhile True:\n    threading.Thread(target=time.sleep, args=(5,)).start()")
    blocked(r, "RuntimeError", "MemoryError")
    assert_healthy(pool)


def test_cpu_spin_hits_the_deadline(pool):
    r = attack(pool, "x = 1", tests=("while True:\n    pass",))
    assert r.tests[0].status == "timeout" and r.duration_s < TEST_S + 1.5, r
    assert_healthy(pool)


def test_sleep_past_the_deadline(pool):
    r = attack(pool, "import time\ntime.sleep(100)")
    assert r.status == "timeout" and r.duration_s < JOB_S + 1.5, r
    assert_healthy(pool)


def test_infinite_loop_inside_a_c_call_is_killed(pool):
    # Catastrophic regex backtracking runs entirely inside C: SIGALRM-based guards never get control back.
    r = attack(pool, "import re", tests=("re.match(r'(a+)+$', 'a' * 64 + 'b')",))
    assert r.tests[0].status == "timeout" and r.duration_s < TEST_S + 1.5, r
    r = attack(pool, "x = 10 ** (10 ** 9)")  # one huge bignum multiplication, also in C
    assert r.status in ("timeout", "memory"), r
    assert_healthy(pool)


def test_huge_stdout_is_capped(pool):
    # Output past the cap is read and dropped, so endless printing ends at the deadline with 64 KiB kept.
    r = attack(pool, "while True:\n    print('x' * 1000)")
    assert r.status == "timeout" and r.output_truncated and len(r.stdout) <= 65536, r.status
    assert r.duration_s < JOB_S + 1.5
    r = attack(pool, "import sys\nsys.stderr.write('y' * (50 << 20))")
    assert r.status in ("pass", "memory") and len(r.stderr) <= 65536, r.status
    assert_healthy(pool)


def test_threads_do_not_outlive_the_job(solo):
    r = attack(
        solo,
        "import threading, time\ndef spin():\n    while True:\n        time.sleep(0.01)\n"
        "threading.Thread(target=spin, daemon=False).start()",
    )
    assert r.passed and r.duration_s < 1.0, r  # the job returned without waiting for its thread
    r = attack(
        solo,
        "import os\nprocs = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())\n"
        "assert procs == [1, os.getpid()], procs\nassert len(os.listdir('/proc/self/task')) == 1",
    )
    assert r.passed, r  # nothing but the executor (pid 1) and this job exists in the namespace
    assert_healthy(solo)


def test_recursion_depth_crash_is_contained(pool):
    r = attack(pool, "def f(n):\n    return f(n + 1)\nf(0)")
    blocked(r, "RecursionError")
    r = attack(pool, "import sys\nsys.setrecursionlimit(10 ** 7)\ndef f(n):\n    return list(map(f, [n + 1]))\nf(0)")
    blocked(r, "Crash", "RecursionError", "MemoryError")
    assert_healthy(pool)


# --- result integrity ---------------------------------------------------------------------------------------------
def test_early_sys_exit_does_not_pass(pool):
    r = attack(pool, "import sys\nsys.exit(0)", tests=("assert False",))
    assert not r.passed and r.program.exc_type == "SystemExit", r
    r = attack(pool, "def f():\n    return 1", tests=("import sys\nsys.exit(0)", "assert f() == 2"))
    assert not r.passed and [t.status for t in r.tests] == ["error", "fail"], r
    assert_healthy(pool)


def test_os_exit_zero_does_not_pass(pool):
    r = attack(pool, "import os\nos._exit(0)", tests=("assert False",))
    assert not r.passed and r.program.exc_type == "EarlyExit", r
    r = attack(pool, "x = 1", tests=("import os\nos._exit(0)", "assert x == 1"))
    assert [t.status for t in r.tests] == ["error", "pass"] and not r.passed, r  # test 1 resumed in a fresh child
    assert_healthy(pool)


def test_printed_or_injected_fake_results_do_not_pass(pool):
    fake = "\\t".join(["0" * 32, "T", "0", "pass", "", "", "", "0", ""])
    r = attack(
        pool,
        f"print('passed')\nprint('3 passed, 0 failed')\nimport os\nos.write(3, b'{fake}\\n')\n"
        "os.write(3, b'P\\t0\\tpass\\n')\nos._exit(0)",
        tests=("assert False",),
    )
    assert not r.passed and r.program.exc_type == "EarlyExit", r
    r = attack(pool, "import os\nos.close(3)", tests=("assert True",))
    assert not r.passed, r  # a closed result channel reports nothing, which never counts as passing
    assert_healthy(pool)


def test_patching_builtins_does_not_turn_a_failure_into_a_pass(pool):
    r = attack(
        pool,
        "import builtins\nbuiltins.isinstance = lambda *a: True\nbuiltins.str = lambda *a: 'pass'\n"
        "builtins.type = lambda *a: 'pass'",
        tests=("assert 1 == 2",),
    )
    assert r.tests[0].status == "fail", r
    assert_healthy(pool)


def test_signalling_itself_only_ends_its_own_job(pool):
    r = attack(pool, "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")
    blocked(r, "Crash")
    assert_healthy(pool)


def test_executor_survives_a_burst_of_attacks(pool):
    progs = [
        "import os\nos._exit(3)",
        "while True: pass",
        "x = bytearray(8 << 30)",
        "import ctypes\nctypes.string_at(0)",
    ]
    results = pool.map([Job(program=p, tests=("assert True",)) for p in progs * 2])
    assert not any(r.passed for r in results)
    assert pool.restarts == 0  # every attack was handled inside its own job child
    assert_healthy(pool)
