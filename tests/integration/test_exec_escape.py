"""Escapes through exec, replayed as a hostile tenant would try them.

A static program inside the container or instance (progs/exec-race.c) polls
/proc for the process the host brings in with `exec` and tries to reach the
host through it: the host's root and working directory through
/proc/PID/{root,cwd}, the runtime binary through /proc/PID/exe, and a ptrace
attach while the process still runs the runtime's code. The host runs many
execs while it watches; not one may give it anything. progs/tiocsti.c tries
to push keystrokes into the terminal `exec` was run from."""

import fcntl
import json
import os
import pty
import select
import subprocess
import termios
import time
from pathlib import Path

import pytest

from helpers import default_config, wait_for

HERE = Path(__file__).resolve().parent
EXECS = int(os.environ.get("ISOLA_IT_RACE_EXECS", "200"))


def build_static(name, dest_dir):
    """Compile progs/<name>.c statically into dest_dir/<name>."""
    out = Path(dest_dir) / name
    subprocess.run(["cc", "-static", "-O2", "-o", str(out), str(HERE / "progs" / f"{name}.c")],
                   check=True)
    return out


@pytest.fixture(scope="module")
def progs(tmp_path_factory):
    d = tmp_path_factory.mktemp("progs")
    return {n: build_static(n, d) for n in ("exec-race", "tiocsti")}


def marker_file(ctx):
    """A file only the host has, readable by any uid (so a tenant in a user
    namespace could open it if it ever reached the host's file system)."""
    m = ctx.dir / f"host-marker-{ctx.token}"
    m.write_text("host\n")
    os.chmod(m, 0o644)
    return m


def parse_result(text):
    line = [l for l in text.splitlines() if l.startswith("scans=")]
    assert line, f"the attacker printed no result:\n{text}"
    return {k: int(v) for k, v in (kv.split("=") for kv in line[-1].split())}


def race_config(marker, extra_caps=(), userns=False):
    """The attacker as the container's process, writing to /out/result."""
    c = default_config(["/bin/sh", "-c", f"/exec-race {marker} /out/stop attach > /out/result"])
    caps = c["process"]["capabilities"]
    for s in ("bounding", "effective", "permitted"):
        caps[s] = caps[s] + list(extra_caps)
    c["root"]["readonly"] = False
    if userns:
        c["linux"]["namespaces"].append({"type": "user"})
        c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    return c


def run_race(ctx, bundle, progs, userns):
    marker = marker_file(ctx)
    b = bundle(race_config(marker, ["CAP_SYS_PTRACE"], userns=userns), out=True,
               owner=(100000, 100000) if userns else None)
    dst = b.rootfs / "exec-race"
    dst.write_bytes(progs["exec-race"].read_bytes())
    os.chmod(dst, 0o755)
    if userns:
        os.chown(dst, 100000, 100000)
        os.chown(b.out, 100000, 100000)
    ctx.create(b).ok()
    ctx.run("start", b.id).ok()
    result = b.out / "result"
    wait_for(lambda: result.exists() and "ready" in result.read_text(), what="the attacker")
    failures = 0
    for _ in range(EXECS):
        # Started from the marker's directory: a leaked cwd would show it.
        r = ctx.run("exec", b.id, "/bin/true", cwd=ctx.dir)
        failures += r.rc != 0
    (b.out / "stop").write_text("")
    wait_for(lambda: "scans=" in result.read_text(), what="the attacker's result")
    res = parse_result(result.read_text())
    return res, failures, result.read_text()


@pytest.mark.parametrize("userns", [False, True], ids=["rootful-cap-sys-ptrace", "userns"])
def test_exec_helper_gives_the_tenant_nothing_of_the_host(ctx, bundle, progs, userns):
    """The exec'd process is never visible in the container's pid namespace
    while it holds the host's root, cwd or the runtime binary, and is not
    attachable while it runs the runtime's code (with CAP_SYS_PTRACE in a
    user namespace; a rootful CAP_SYS_PTRACE may attach, as with runc, but
    finds only the container's file system)."""
    res, failures, text = run_race(ctx, bundle, progs, userns)
    assert res["seen"] >= EXECS // 2, f"the attacker saw too few of the execs to mean anything: {text}"
    assert failures == 0, f"{failures} of {EXECS} execs failed"
    assert res["root"] == 0 and res["cwd"] == 0 and res["exe"] == 0, text
    if userns:
        assert res["attach"] == 0, text


def pty_run(argv, env=None, stdin_pipe=False, timeout=30):
    """Run argv with a new pty as its controlling terminal (stdin too, unless
    stdin_pipe), the way an admin's shell would. Returns (rc, output, pending):
    pending is what sits unread in the terminal's input queue afterwards, i.e.
    keystrokes something pushed into the admin's shell."""
    master, slave = pty.openpty()

    def preexec():
        os.setsid()
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)

    p = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin_pipe else slave, stdout=slave,
                         stderr=slave, preexec_fn=preexec, env=env, close_fds=True)
    if stdin_pipe:
        p.stdin.close()
    out = b""
    end = time.monotonic() + timeout
    while True:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                out += os.read(master, 4096)
            except OSError:
                break
        if p.poll() is not None and not ready:
            break
        assert time.monotonic() < end, f"timed out: {argv}\n{out!r}"
    # What is queued for reading on the terminal now is what a shell reading
    # it would get as typed input.
    os.set_blocking(slave, False)
    try:
        pending = os.read(slave, 4096)
    except BlockingIOError:
        pending = b""
    os.close(slave)
    os.close(master)
    return p.returncode, out.decode(errors="replace"), pending


@pytest.mark.parametrize("userns", [False, True], ids=["rootful", "userns"])
def test_exec_without_terminal_cannot_push_keystrokes(ctx, bundle, progs, userns):
    """TIOCSTI: a process exec'd without a pty gets its own session, so the
    terminal `exec` was run from is not its controlling terminal and it
    cannot type into the admin's shell."""
    c = default_config(["sleep", "1000"])
    if userns:
        c["linux"]["namespaces"].append({"type": "user"})
        c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    b = bundle(c, owner=(100000, 100000) if userns else None)
    dst = b.rootfs / "tiocsti"
    dst.write_bytes(progs["tiocsti"].read_bytes())
    os.chmod(dst, 0o755)
    ctx.create(b).ok()
    ctx.run("start", b.id).ok()
    env = dict(os.environ, ISOLA_IT_ID=ctx.token)
    rc, out, pending = pty_run(ctx.argv(["exec", b.id, "/tiocsti"]), env=env)
    assert rc == 0, out
    assert "injected" not in out, out
    assert b"PWNED" not in pending, (out, pending)
    assert "fd 0: " in out and "/dev/tty: ENXIO" in out, out


@pytest.mark.parametrize("field,value", [
    ("uid", 4294967295), ("gid", 4294967295), ("uid", 2147483648), ("gid", -1),
])
def test_ids_outside_the_kernel_range_are_refused(ctx, bundle, field, value):
    """uid/gid (u32)-1 means "unchanged" to the kernel: a process asked to
    run as 4294967295 would stay root. Ids must lie in 0..2^31-1."""
    c = default_config(["id"])
    c["process"]["user"][field] = value
    b = bundle(c)
    r = ctx.create(b)
    assert r.rc != 0, str(r)
    assert f"process.user.{field}" in r.err, r.err


def test_additional_gids_outside_the_kernel_range_are_refused(ctx, bundle):
    c = default_config(["id"])
    c["process"]["user"]["additionalGids"] = [1, 4294967295]
    r = ctx.create(bundle(c))
    assert r.rc != 0 and "process.user.additionalGids[1]" in r.err, str(r)


@pytest.mark.parametrize("user", ["4294967295", "0:4294967295", "2147483648", "-1"])
def test_exec_user_outside_the_kernel_range_is_refused(ctx, bundle, user):
    b = bundle(default_config(["sleep", "1000"]))
    ctx.create(b).ok()
    ctx.run("start", b.id).ok()
    r = ctx.run("exec", "-u", user, b.id, "id")
    assert r.rc != 0, str(r)
    assert "uid=0" not in r.out and "--user" in r.err, str(r)
