"""Where real clients notice a difference from runc (podman, containerd's CRI,
kubectl): the same bundle must behave as under runc 1.1.5. Every test here
also passes with ISOLA_RUNTIME=/usr/sbin/runc, which is how its expectation
was checked."""

import json
import os

import pytest

from helpers import default_config, hook, sh, wait_for, write_script
from test_tty import on_pty


def running(ctx, bundle, config=None, **kw):
    b = bundle(config or default_config(["sleep", "1000"]), **kw)
    ctx.create(b).ok()
    ctx.run("start", b.id).ok()
    ctx.wait_status(b.id, "running")
    return b


# ---- the terminal belongs to the process's user ------------------------------

TTY_PROBE = "t=$(tty); stat -c 'owner=%u group=%g' $t; (echo reopened > $t) && echo reopen-ok; exit 0"


def test_run_terminal_is_owned_by_the_process_user(ctx, bundle):
    """podman run -it --user 1000: the process reopens its own tty
    (gpg, script, password prompts)."""
    c = sh(TTY_PROBE)
    c["process"]["terminal"] = True
    c["process"]["user"] = {"uid": 1000, "gid": 1000}
    b = bundle(c)
    rc, out = on_pty(ctx.argv(["run", "--bundle", str(b.path), b.id]))
    assert rc == 0, out
    assert "owner=1000 group=5" in out, out
    assert "reopen-ok" in out, out


def test_exec_terminal_is_owned_by_the_process_user(ctx, bundle):
    b = running(ctx, bundle)
    rc, out = on_pty(ctx.argv(["exec", "-t", "-u", "1000:1000", b.id, "sh", "-c", TTY_PROBE]))
    assert rc == 0, out
    assert "owner=1000 group=5" in out, out
    assert "reopen-ok" in out, out


# ---- the working directory is entered while privileged -------------------------

def test_user_starts_in_a_directory_only_root_can_search(ctx, run_container):
    """--user 1000 --workdir /root: /root is 0700 root's in the image."""
    c = sh("pwd; ls . >/dev/null 2>&1 || echo unreadable", cwd="/root")
    c["process"]["user"] = {"uid": 1000, "gid": 1000}
    rc, out, err = run_container(c)
    assert rc == 0, err
    assert out.split() == ["/root", "unreadable"]


def test_exec_user_in_a_directory_only_root_can_search(ctx, bundle):
    b = running(ctx, bundle)
    r = ctx.run("exec", "-u", "1000:1000", "--cwd", "/root", b.id, "pwd").ok()
    assert r.out.strip() == "/root"


# ---- seccomp goes in last ------------------------------------------------------

def profile_denying(*names):
    return {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": list(names), "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}


@pytest.mark.parametrize("nnp", [True, pytest.param(False, marks=pytest.mark.xfail_runtime(
    "runc", reason="without noNewPrivileges runc loads the filter before its chdir into process.cwd"))])
def test_profile_without_chdir_still_runs_a_process(ctx, run_container, nnp):
    """A profile that refuses chdir: the runtime's own chdir into
    process.cwd comes before the filter (with noNewPrivileges, the filter
    goes in last; without, before the capabilities are dropped, and the
    cwd was entered before that)."""
    c = sh("cd /tmp 2>/dev/null && echo cd-ok || echo cd-refused", cwd="/tmp")
    c["process"]["noNewPrivileges"] = nnp
    c["linux"]["seccomp"] = profile_denying("chdir", "fchdir")
    rc, out, err = run_container(c)
    assert rc == 0, err
    assert out.strip() == "cd-refused"


def test_start_container_hooks_run_under_the_filter(ctx, bundle):
    """startContainer hooks run in the container after the filter is in
    (with noNewPrivileges), as under runc: what it refuses, they cannot do."""
    c = default_config(["true"])
    c["process"]["noNewPrivileges"] = True
    c["linux"]["seccomp"] = profile_denying("mkdir", "mkdirat")
    c["hooks"] = {"startContainer": [hook("/bin/sh", "-c",
                                          "mkdir /out/by-hook && echo made > /out/hook "
                                          "|| echo refused > /out/hook")]}
    b = bundle(c, out=True)
    ctx.create(b).ok()
    ctx.run("start", b.id)
    wait_for(lambda: (b.out / "hook").exists(), what="the hook's report")
    assert (b.out / "hook").read_text().strip() == "refused"
    assert not (b.out / "by-hook").exists()


# ---- exec gets the container's oom_score_adj -------------------------------------

def test_exec_gets_the_containers_oom_score_adj(ctx, bundle):
    """A kubelet's containerd runs at -999: kubectl exec must not make the
    exec'd process (nearly) unkillable by the OOM killer."""
    c = default_config(["sleep", "1000"])
    c["process"]["oomScoreAdj"] = 700
    b = running(ctx, bundle, c)

    # Lowering one's own score needs CAP_SYS_RESOURCE, which this machine's
    # bounding set lacks: the caller runs above 0 instead of at -999.
    def caller_at_200():
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("200")
    r = ctx.run("exec", b.id, "cat", "/proc/self/oom_score_adj", preexec_fn=caller_at_200).ok()
    assert r.out.strip() == "700"


# ---- HOME from the container's /etc/passwd ----------------------------------------

def env_without_home(config):
    config["process"]["env"] = [e for e in config["process"]["env"] if not e.startswith("HOME=")]
    return config


@pytest.mark.parametrize("uid,home", [(0, "/root"), (1000, "/home/user"), (4242, "/")])
def test_home_comes_from_passwd_when_unset(ctx, run_container, uid, home):
    c = env_without_home(sh('echo "HOME=$HOME"'))
    c["process"]["user"] = {"uid": uid, "gid": uid}
    rc, out, err = run_container(c)
    assert rc == 0, err
    assert out.strip() == f"HOME={home}"


def test_home_given_in_env_is_kept(ctx, run_container):
    c = sh('echo "HOME=$HOME"')
    c["process"]["env"].append("HOME=/custom")
    c["process"]["user"] = {"uid": 1000, "gid": 1000}
    rc, out, err = run_container(c)
    assert out.strip() == "HOME=/custom"


def test_exec_home_comes_from_passwd(ctx, bundle):
    b = running(ctx, bundle, env_without_home(default_config(["sleep", "1000"])))
    r = ctx.run("exec", "-u", "1000", b.id, "sh", "-c", 'echo "HOME=$HOME"').ok()
    assert r.out.strip() == "HOME=/home/user"
    r = ctx.run("exec", b.id, "sh", "-c", 'echo "HOME=$HOME"').ok()
    assert r.out.strip() == "HOME=/root"


@pytest.mark.xfail_runtime("runc", reason="runc opens the container's /etc/passwd and blocks on a FIFO")
def test_hostile_passwd_does_not_block_the_start(ctx, bundle):
    """/etc/passwd is the tenant's: a FIFO there must not hang the runtime."""
    c = env_without_home(sh('echo "HOME=$HOME"'))
    b = bundle(c)
    (b.rootfs / "etc" / "passwd").unlink()
    os.mkfifo(b.rootfs / "etc" / "passwd")
    r = ctx.run("run", "--bundle", b.path, b.id, timeout=15)
    assert r.rc == 0, str(r)
    assert r.out.strip() == "HOME=/"


# ---- kill 0 and run --keep -----------------------------------------------------------

def test_kill_signal_zero_is_a_liveness_probe(ctx, bundle):
    b = running(ctx, bundle)
    ctx.run("kill", b.id, "0").ok()
    ctx.run("kill", "--all", b.id, "0").ok()
    assert ctx.state(b.id)["status"] == "running"
    ctx.run("kill", b.id, "KILL").ok()
    ctx.wait_status(b.id, "stopped")
    assert ctx.run("kill", b.id, "0").rc != 0


def test_run_keep_leaves_the_container_stopped(ctx, bundle):
    b = bundle(sh("exit 3"))
    r = ctx.run("run", "--keep", "--bundle", b.path, b.id)
    assert r.rc == 3, str(r)
    st = ctx.state(b.id)
    assert st["status"] == "stopped"
    ctx.run("delete", b.id).ok()
    assert ctx.run("state", b.id).rc != 0


def test_create_container_hooks_run_in_the_rootfs(ctx, bundle):
    """Hooks that use relative paths find the container's files."""
    c = default_config(["true"])
    b = bundle(c, out=True)
    c["hooks"] = {"createContainer": [hook("/bin/sh", "-c", f"pwd > {b.out}/cwd; cat etc/hostname-probe > {b.out}/rel")]}
    b.write()
    (b.rootfs / "etc" / "hostname-probe").write_text("in-rootfs\n")
    ctx.create(b).ok()
    assert os.path.realpath((b.out / "cwd").read_text().strip()) == os.path.realpath(b.rootfs)
    assert (b.out / "rel").read_text().strip() == "in-rootfs"
