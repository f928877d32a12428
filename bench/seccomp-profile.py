#!/usr/bin/python3
"""Writes a Docker-style default seccomp profile (linux.seccomp JSON) to stdout.

Used only when tests/data/seccomp-default.json is missing. The allow list is
every x86_64 syscall libseccomp knows, minus the ones a default container
profile refuses (host administration, kernel modules, tracing, keyrings,
namespace and mount manipulation, ...); everything else returns EPERM. The
filter shape - a few hundred names in one SCMP_ACT_ALLOW rule over an
SCMP_ACT_ERRNO default - is what a runtime compiles for a typical container.
"""
import ctypes
import json
import sys

# Refused by a default container profile: they act on the host, not the
# container, or are classic escape and information-leak vectors.
DENIED = {
    "acct", "add_key", "bpf", "clock_adjtime", "clock_settime", "clone3",
    "create_module", "delete_module", "finit_module", "fsconfig", "fsmount",
    "fsopen", "fspick", "get_kernel_syms", "get_mempolicy", "init_module",
    "ioperm", "iopl", "kcmp", "kexec_file_load", "kexec_load", "keyctl",
    "lookup_dcookie", "mbind", "mount", "mount_setattr", "move_mount",
    "move_pages", "name_to_handle_at", "nfsservctl", "open_by_handle_at",
    "open_tree", "perf_event_open", "personality", "pivot_root",
    "process_vm_readv", "process_vm_writev", "ptrace", "query_module",
    "quotactl", "quotactl_fd", "reboot", "request_key", "set_mempolicy",
    "setdomainname", "sethostname", "setns", "settimeofday", "stime",
    "swapoff", "swapon", "sysfs", "_sysctl", "umount", "umount2", "unshare",
    "uselib", "userfaultfd", "ustat", "vhangup", "vm86", "vm86old",
    "afs_syscall", "tuxcall", "security", "putpmsg", "getpmsg",
    "lsm_get_self_attr", "lsm_set_self_attr", "lsm_list_modules",
}


def known_syscalls():
    lib = ctypes.CDLL("libseccomp.so.2")
    libc = ctypes.CDLL(None)
    lib.seccomp_arch_resolve_name.restype = ctypes.c_uint32
    lib.seccomp_arch_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_syscall_resolve_num_arch.restype = ctypes.c_void_p
    lib.seccomp_syscall_resolve_num_arch.argtypes = [ctypes.c_uint32, ctypes.c_int]
    libc.free.argtypes = [ctypes.c_void_p]
    arch = lib.seccomp_arch_resolve_name(b"x86_64")
    if arch == 0:
        sys.exit("seccomp-profile: libseccomp does not know x86_64")
    names = set()
    for nr in range(0, 1024):
        p = lib.seccomp_syscall_resolve_num_arch(arch, nr)
        if p:
            names.add(ctypes.string_at(p).decode())
            libc.free(p)
    return names


def main():
    allowed = sorted(known_syscalls() - DENIED)
    profile = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": allowed, "action": "SCMP_ACT_ALLOW"}],
    }
    json.dump(profile, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
