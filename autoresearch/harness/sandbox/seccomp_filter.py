"""Seccomp filters for sandbox jobs: a libseccomp deny-list built once, plus a tiny hand-written kill guard per job.

A job process loads two filters after it has dropped privileges (the kernel runs both; the strictest action wins):
1. The deny-list (`build_deny_filter`): sockets, exec, process creation other than threads, ptrace and cross-process
   memory access, namespaces and mounts, memory the host would hold outside the job's rlimits (memfd, SysV IPC),
   and the rarely-needed kernel attack surface (bpf, io_uring, keyctl, ...) return EPERM. A deny-list rather than
   an allow-list because CPython needs a long, version-dependent tail of syscalls (mmap, futex, getrandom, rseq, ...). libseccomp adds the architecture check (foreign-ABI syscalls such as
   int 0x80 or x32 kill the process). The BPF is exported once by the executor and loaded in every child with one
   prctl, because compiling it per job costs more than the job itself (DESIGN.md §5: fork+seccomp 110-170/s).
2. The kill guard (`kill_guard_filter(pid)`): kill/tkill/tgkill/rt_sig*queueinfo may only target the job's own
   process or process group. libseccomp 2.5 cannot express "arg0 not in {0, pid, -pid}" (one comparison per
   argument per rule), so this small program is assembled here; it compares the low 32 bits of arg0, which is
   exactly what the kernel reads for a pid_t.

This module must stay importable on its own (stdlib + pyseccomp): the executor loads it inside the sandbox, where
the autoresearch package is not mounted.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
import sys

__all__ = [
    "DENIED_SYSCALLS",
    "build_deny_filter",
    "kill_guard_filter",
    "load_filter",
    "set_no_new_privs",
    "seccomp_available",
]

# Grouped by why they are denied; names unknown on this architecture are skipped (e.g. fork/vfork on aarch64).
DENIED_SYSCALLS: dict[str, tuple[str, ...]] = {
    "network": tuple(
        "socket socketpair connect bind listen accept accept4 sendto sendmsg sendmmsg recvfrom recvmsg "
        "recvmmsg setsockopt getsockopt shutdown getpeername getsockname".split()
    ),
    "exec": tuple("execve execveat uselib".split()),
    "other processes": tuple(
        "ptrace process_vm_readv process_vm_writev kcmp pidfd_open pidfd_getfd pidfd_send_signal "
        "process_madvise".split()
    ),
    "namespaces and mounts": tuple(
        "unshare setns mount umount2 pivot_root chroot move_mount open_tree fsopen fsconfig fsmount fspick "
        "mount_setattr name_to_handle_at open_by_handle_at".split()
    ),
    # SysV IPC objects outlive the process that made them: the next job (same uid) could read them, and segments
    # left behind would pile up memory outside every rlimit. POSIX queues are also capped by RLIMIT_MSGQUEUE=0.
    "ipc": tuple(
        "shmget shmat shmdt shmctl semget semop semtimedop semctl msgget msgsnd msgrcv msgctl mq_open "
        "mq_timedsend mq_timedreceive mq_notify mq_getsetattr mq_unlink".split()
    ),
    # Memory outside every rlimit: a memfd is RAM the host holds (shmem) yet not in the job's address space until
    # mapped, and each may grow to RLIMIT_FSIZE: 56 memfds x 16 MiB raised host shared memory by 896 MiB under a
    # 1 GiB RLIMIT_AS (issue 8). memfd_secret pins unswappable pages. POSIX shm (shm_open) needs a writable
    # /dev/shm, which strict does not give the job uid (tests/test_sandbox_attacks.py checks both).
    "memory outside rlimits": ("memfd_create", "memfd_secret"),
    "identity": tuple("setuid setgid setreuid setregid setresuid setresgid setfsuid setfsgid setgroups capset".split()),
    "kernel surface": tuple(
        "bpf perf_event_open userfaultfd io_uring_setup io_uring_enter io_uring_register keyctl add_key "
        "request_key kexec_load kexec_file_load init_module finit_module delete_module reboot swapon swapoff "
        "acct quotactl quotactl_fd syslog iopl ioperm modify_ldt lookup_dcookie fanotify_init personality "
        "vhangup settimeofday clock_settime clock_adjtime adjtimex sethostname setdomainname migrate_pages "
        "move_pages mbind nfsservctl create_module get_kernel_syms query_module _sysctl".split()
    ),
}

_PROCESS_CREATION = ("fork", "vfork")
_CLONE_THREAD = 0x00010000
# A thread-creating clone never needs a new namespace; deny each CLONE_NEW* bit explicitly as well.
_CLONE_NEW_FLAGS = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000)

_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2

_libc = ctypes.CDLL(None, use_errno=True)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def seccomp_available() -> tuple[bool, str]:
    """(True, "") when pyseccomp/libseccomp load here; else (False, why)."""
    try:
        import pyseccomp  # noqa: F401
    except Exception as e:  # pyseccomp raises RuntimeError when libseccomp.so is missing
        return False, f"{type(e).__name__}: {e}"
    return True, ""


def build_deny_filter(allow_fork: bool = False) -> bytes:
    """The deny-list as raw BPF (struct sock_filter array), ready for `load_filter`."""
    import pyseccomp as sc

    arch = sc.system_arch()
    f = sc.SyscallFilter(sc.ALLOW)
    names = [n for group in DENIED_SYSCALLS.values() for n in group]
    if not allow_fork:
        names += list(_PROCESS_CREATION)
    eperm = sc.ERRNO(errno.EPERM)
    for name in names:
        if sc.resolve_syscall(arch, name) < 0:
            continue
        f.add_rule(eperm, name)
    if sc.resolve_syscall(arch, "clone") >= 0:
        if not allow_fork:
            f.add_rule(eperm, "clone", sc.Arg(0, sc.MASKED_EQ, _CLONE_THREAD, 0))
        for flag in _CLONE_NEW_FLAGS:
            f.add_rule(eperm, "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
    if sc.resolve_syscall(arch, "clone3") >= 0:
        # clone3 passes its flags in memory, which seccomp cannot inspect; ENOSYS makes glibc fall back to clone.
        f.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
    if sc.resolve_syscall(arch, "prlimit64") >= 0:
        # Own limits only (glibc passes pid 0); raising is already blocked by the hard limits.
        f.add_rule(eperm, "prlimit64", sc.Arg(0, sc.NE, 0))
    r, w = os.pipe()
    try:
        with os.fdopen(w, "wb") as wf:
            f.export_bpf(wf)
        chunks = []
        while chunk := os.read(r, 65536):
            chunks.append(chunk)
    finally:
        os.close(r)
    return b"".join(chunks)


# --- kill guard ----------------------------------------------------------------------------------------------------
_LD_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
_JEQ = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_RET = 0x06  # BPF_RET | BPF_K
_RET_ALLOW = 0x7FFF0000
_RET_EPERM = 0x00050000 | errno.EPERM
_RET_KILL_PROCESS = 0x80000000


def _syscall_numbers(names: tuple[str, ...]) -> dict[str, int]:
    import pyseccomp as sc

    arch = sc.system_arch()
    return {n: nr for n in names if (nr := sc.resolve_syscall(arch, n)) >= 0}


def kill_guard_filter(pid: int) -> bytes:
    """BPF that lets signal syscalls reach only `pid` (itself) or its process group; everything else passes."""
    import pyseccomp as sc

    if pid <= 1:
        raise ValueError(f"kill guard needs the job's own pid (> 1), got {pid}")
    arch = sc.system_arch()
    nrs = _syscall_numbers(("kill", "rt_sigqueueinfo", "tgkill", "rt_tgsigqueueinfo", "tkill"))
    arg0_lo = 16 + (4 if sys.byteorder == "big" else 0)
    me, my_group = pid & 0xFFFFFFFF, (-pid) & 0xFFFFFFFF
    # Instructions as (code, jt-label, jf-label, k); labels are resolved to relative jumps below.
    prog: list[tuple[int, str | None, str | None, int] | str] = [
        (_LD_ABS, None, None, 4),
        (_JEQ, None, "kill_process", arch),
        (_LD_ABS, None, None, 0),
    ]
    any_target = [n for n in ("kill", "rt_sigqueueinfo") if n in nrs]
    self_only = [n for n in ("tgkill", "rt_tgsigqueueinfo", "tkill") if n in nrs]
    for n in any_target:
        prog.append((_JEQ, "check_group", None, nrs[n]))
    for n in self_only:
        prog.append((_JEQ, "check_self", None, nrs[n]))
    prog += [
        (_RET, None, None, _RET_ALLOW),
        "check_group",
        (_LD_ABS, None, None, arg0_lo),
        (_JEQ, "allow", None, 0),
        (_JEQ, "allow", None, my_group),
        (_JEQ, "allow", "eperm", me),
        "check_self",
        (_LD_ABS, None, None, arg0_lo),
        (_JEQ, "allow", "eperm", me),
        "allow",
        (_RET, None, None, _RET_ALLOW),
        "eperm",
        (_RET, None, None, _RET_EPERM),
        "kill_process",
        (_RET, None, None, _RET_KILL_PROCESS),
    ]
    labels: dict[str, int] = {}
    pos = 0
    for item in prog:
        if isinstance(item, str):
            labels[item] = pos
        else:
            pos += 1
    out = bytearray()
    pos = 0
    for item in prog:
        if isinstance(item, str):
            continue
        code, jt, jf, k = item
        jt_off = labels[jt] - pos - 1 if jt else 0
        jf_off = labels[jf] - pos - 1 if jf else 0
        out += struct.pack("=HBBI", code, jt_off, jf_off, k)
        pos += 1
    return bytes(out)


def set_no_new_privs() -> None:
    """PR_SET_NO_NEW_PRIVS: required before an unprivileged process may load a filter; also blocks setuid gains."""
    if _libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"prctl(PR_SET_NO_NEW_PRIVS) failed: {os.strerror(e)}")


def load_filter(bpf: bytes) -> None:
    """Install one BPF program on the calling thread (irreversible; filters only ever stack)."""
    if not bpf or len(bpf) % 8:
        raise ValueError(f"BPF program must be a non-empty multiple of 8 bytes, got {len(bpf)}")
    buf = ctypes.create_string_buffer(bpf, len(bpf))
    prog = _SockFprog(len(bpf) // 8, ctypes.addressof(buf))
    if _libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"prctl(PR_SET_SECCOMP) failed: {os.strerror(e)}")
