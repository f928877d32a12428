"""exec: another process inside a running container sees the container's
namespaces, cgroup, identity and limits; flags override the config's process."""

import json
import os

import pytest

from helpers import default_config, sh, wait_file


def running(ctx, bundle, config=None):
    b = bundle(config or default_config(["sleep", "1000"]))
    ctx.create(b).ok()
    ctx.run("start", b.id).ok()
    ctx.wait_status(b.id, "running")
    return b, ctx.state(b.id)["pid"]


def ns_of(pid, ns):
    return os.readlink(f"/proc/{pid}/ns/{ns}")


def test_exec_sees_container_namespaces(ctx, bundle):
    b, pid = running(ctx, bundle)
    r = ctx.run("exec", b.id, "sh", "-c",
                "for n in pid net mnt uts ipc cgroup; do readlink /proc/self/ns/$n; done; "
                "hostname; cat /proc/self/cgroup; echo --; cat /proc/1/cgroup").ok()
    lines = r.out.splitlines()
    assert lines[:6] == [ns_of(pid, n) for n in ("pid", "net", "mnt", "uts", "ipc", "cgroup")]
    assert lines[6] == "isola"
    # The same cgroups as the container's PID 1, in every hierarchy.
    mine, _, init = "\n".join(lines[7:]).partition("\n--\n")
    assert mine.split() == init.split()


def test_exec_in_container_cgroup_and_pidns(ctx, bundle):
    b, pid = running(ctx, bundle)
    r = ctx.run("exec", b.id, "sh", "-c", "echo $$; ps -o pid,comm").ok()
    inner_pid = int(r.out.split()[0])
    assert inner_pid != 1
    assert "sleep" in r.out  # PID 1 of the container is visible, nothing of the host
    host_ps = len(os.listdir("/proc"))
    assert len(r.out.splitlines()) < 10 < host_ps


def test_exec_exit_status(ctx, bundle):
    b, _ = running(ctx, bundle)
    assert ctx.run("exec", b.id, "sh", "-c", "exit 7").rc == 7


def test_exec_keeps_caps_and_nnp_of_config(ctx, bundle):
    b, _ = running(ctx, bundle)
    r = ctx.run("exec", b.id, "grep", "-E", "^(CapEff|NoNewPrivs)", "/proc/self/status").ok()
    fields = dict(l.split(":\t") for l in r.out.splitlines())
    assert int(fields["CapEff"], 16) == (1 << 5) | (1 << 10) | (1 << 29)
    assert fields["NoNewPrivs"].strip() == "1"


def test_exec_cap_flag_adds_capability(ctx, bundle):
    b, _ = running(ctx, bundle)
    r = ctx.run("exec", "--cap", "CAP_CHOWN", b.id, "grep", "^CapEff", "/proc/self/status").ok()
    assert int(r.out.split()[1], 16) & 1


def test_exec_user_env_cwd(ctx, bundle):
    b, _ = running(ctx, bundle)
    r = ctx.run("exec", "--user", "1000:1000", "--additional-gids", "10", "--env", "FOO=bar",
                "--cwd", "/tmp", b.id, "sh", "-c", "id -u; id -g; id -G; echo $FOO; pwd").ok()
    lines = r.out.splitlines()
    assert lines[0] == "1000" and lines[1] == "1000"
    assert "10" in lines[2].split()
    assert lines[3] == "bar" and lines[4] == "/tmp"


def test_exec_process_file(ctx, bundle, tmp_path):
    b, _ = running(ctx, bundle)
    proc = {"args": ["sh", "-c", "echo from-file $X; id -u"], "env": ["PATH=/bin:/usr/bin", "X=1"],
            "cwd": "/", "user": {"uid": 5, "gid": 5}}
    f = tmp_path / "process.json"
    f.write_text(json.dumps(proc))
    r = ctx.run("exec", "--process", str(f), b.id).ok()
    assert r.out.splitlines() == ["from-file 1", "5"]


def test_exec_and_run_read_the_callers_stdin(ctx, bundle, tmp_path):
    """The process gets the caller's stdin as its fd 0, open and readable, and
    exactly the three stdio fds (nothing of the runtime's: the sync socket,
    fifos, the handle on the runtime binary)."""
    data = "line one\nline two\n"
    f = tmp_path / "stdin.txt"
    f.write_text(data)
    script = "cat; ls /proc/self/fd"
    b, _ = running(ctx, bundle)
    with open(f) as stdin:
        r = ctx.run("exec", b.id, "sh", "-c", script, stdin=stdin).ok()
    assert r.out.splitlines() == data.splitlines() + ["0", "1", "2", "3"]  # 3: ls's own directory
    b2 = bundle(default_config(["sh", "-c", script]))
    with open(f) as stdin:
        r = ctx.run("run", "--bundle", b2.path, b2.id, stdin=stdin).ok()
    assert r.out.splitlines() == data.splitlines() + ["0", "1", "2", "3"]


def test_exec_rlimits_of_config(ctx, bundle):
    b, _ = running(ctx, bundle)
    r = ctx.run("exec", b.id, "sh", "-c", "ulimit -n").ok()
    assert r.out.strip() == "1024"


def test_exec_detach_and_pid_file(ctx, bundle, tmp_path):
    b, _ = running(ctx, bundle)
    out = ctx.hostdir("out")
    pf = tmp_path / "exec.pid"
    ctx.run("exec", "--detach", "--pid-file", str(pf), b.id, "sleep", "100").ok()
    pid = int(pf.read_text())
    assert open(f"/proc/{pid}/comm").read().strip() == "sleep"
    assert ns_of(pid, "pid") == ns_of(ctx.state(b.id)["pid"], "pid")


def test_exec_seccomp_applies(ctx, bundle):
    config = default_config(["sleep", "1000"])
    config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
    }
    b, _ = running(ctx, bundle, config)
    r = ctx.run("exec", b.id, "mkdir", "/tmp/x")
    assert r.rc != 0
    assert "not permitted" in r.err


def test_exec_in_stopped_container_fails(ctx, bundle):
    b = bundle(default_config(["true"]))
    ctx.create(b).ok()
    ctx.run("start", b.id).ok()
    ctx.wait_status(b.id, "stopped")
    r = ctx.run("exec", b.id, "true")
    assert r.rc != 0
    assert "stopped" in r.err


def test_exec_missing_binary_fails_cleanly(ctx, bundle):
    b, _ = running(ctx, bundle)
    r = ctx.run("exec", b.id, "/no/such/binary")
    assert r.rc != 0
    assert "/no/such/binary" in r.err
    assert ctx.state(b.id)["status"] == "running"
