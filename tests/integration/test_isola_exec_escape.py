"""`isola exec` attacked from inside an instance: the tenant's root (with
CAP_SYS_PTRACE in its user namespace, as every instance has) races each exec
to reach the host through the process the host brings in, or types into the
admin's terminal. See test_exec_escape.py for the attacker programs."""

import os
import subprocess
from pathlib import Path

import pytest

from test_exec_escape import EXECS, build_static, parse_result, pty_run
from test_isola_instance import ISOLA, host, lxcfs_dir, wait_for  # noqa: F401 (fixtures)


@pytest.fixture(scope="module")
def progs(tmp_path_factory):
    d = tmp_path_factory.mktemp("progs")
    return {n: build_static(n, d) for n in ("exec-race", "tiocsti")}


def put(host, name, prog, dest):
    """Copy a program into the instance's own layer (before it starts)."""
    upper = host.inst_dir(name) / "upper"
    base = host.info(name)["idmap_base"]
    p = upper / dest
    p.write_bytes(prog.read_bytes())
    os.chmod(p, 0o755)
    os.chown(p, base, base)


def test_isola_exec_gives_the_tenant_nothing_of_the_host(host, progs, tmp_path):
    marker_dir = Path(host.base) / "marker"
    marker_dir.mkdir()
    os.chmod(marker_dir, 0o755)
    marker = marker_dir / "host-marker"
    marker.write_text("host\n")
    os.chmod(marker, 0o644)
    host.ok("create", "busybox", "race", "--", "/bin/sh", "-c",
            f"/exec-race {marker} /stop attach > /race.out")
    put(host, "race", progs["exec-race"], "exec-race")
    host.ok("start", "race")
    out = host.inst_dir("race") / "upper" / "race.out"
    wait_for(lambda: out.exists() and "ready" in out.read_text(), what="the attacker")
    failures = []
    for _ in range(EXECS):
        p = subprocess.run([str(ISOLA), "exec", "race", "--", "/bin/true"], env=host.env,
                           cwd=marker_dir, capture_output=True, text=True, timeout=30,
                           stdin=subprocess.DEVNULL)
        if p.returncode:
            failures.append(p.stderr)
    host.ok("exec", "race", "--", "touch", "/stop")
    wait_for(lambda: "scans=" in out.read_text(), what="the attacker's result")
    text = out.read_text()
    res = parse_result(text)
    assert not failures, failures[:3]
    assert res["seen"] >= EXECS // 2, text
    assert res["root"] == 0 and res["cwd"] == 0 and res["exe"] == 0 and res["attach"] == 0, text


@pytest.mark.parametrize("how", ["-T", "stdin-pipe"])
def test_isola_exec_cannot_type_into_the_admins_terminal(host, progs, how):
    host.ok("create", "busybox", "tty1", "--", "sleep", "1000")
    put(host, "tty1", progs["tiocsti"], "tiocsti")
    host.ok("start", "tty1")
    argv = [str(ISOLA), "exec", "tty1"] + (["-T"] if how == "-T" else []) + ["--", "/tiocsti"]
    rc, out, pending = pty_run(argv, env=host.env, stdin_pipe=how == "stdin-pipe")
    assert rc == 0, out
    assert "injected" not in out, out
    assert b"PWNED" not in pending, (out, pending)
    assert "/dev/tty: ENXIO" in out, out


@pytest.mark.parametrize("user,match", [
    ("4294967295", "--user"), ("0:4294967295", "--user"),
    ("70000", "uid 70000 is not mapped"), ("0:70000", "gid 70000 is not mapped"),
])
def test_isola_exec_user_outside_the_instance_is_refused(host, user, match):
    host.ok("launch", "busybox", "u1", "--", "sleep", "1000")
    p = host.run("exec", "u1", "--user", user, "--", "id")
    assert p.returncode != 0, p.stdout
    assert match in p.stderr, p.stderr
    assert "uid=0" not in p.stdout
