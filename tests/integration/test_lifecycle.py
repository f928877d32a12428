"""The OCI lifecycle through the CLI: create, start, state, kill, delete, run,
list, and their exit statuses."""

import json
import os
import signal

import pytest

from helpers import default_config, drop_namespace, sh, wait_file


def test_create_reports_created_state(ctx, bundle):
    config = default_config(["sleep", "1000"])
    config["annotations"] = {"org.example.key": "value", "other": "x"}
    b = bundle(config)
    ctx.create(b).ok()
    st = ctx.state(b.id)
    assert st["id"] == b.id
    assert st["status"] == "created"
    assert isinstance(st["pid"], int) and st["pid"] > 0
    assert os.path.exists(f"/proc/{st['pid']}")
    assert os.path.realpath(st["bundle"]) == os.path.realpath(b.path)
    assert st["annotations"] == config["annotations"]
    assert "ociVersion" in st


def test_process_runs_only_after_start(ctx, bundle):
    b = bundle(sh("echo started > /out/started; exec sleep 1000"), out=True)
    ctx.create(b).ok()
    assert ctx.state(b.id)["status"] == "created"
    assert not (b.out / "started").exists(), "the process ran before start"
    ctx.run("start", b.id).ok()
    assert wait_file(b.out / "started") == "started\n"
    assert ctx.state(b.id)["status"] == "running"


def test_start_twice_fails(ctx, bundle):
    b = bundle(default_config(["sleep", "1000"]))
    ctx.create(b).ok()
    ctx.run("start", b.id).ok()
    assert ctx.run("start", b.id).rc != 0


def test_kill_stops_and_delete_removes(ctx, bundle):
    b = bundle(default_config(["sleep", "1000"]))
    ctx.create(b).ok()
    ctx.run("start", b.id).ok()
    ctx.wait_status(b.id, "running")
    ctx.run("kill", b.id, "KILL").ok()
    ctx.wait_status(b.id, "stopped")
    ctx.run("delete", b.id).ok()
    assert ctx.run("state", b.id).rc != 0
    assert not (ctx.root / b.id).exists()
    assert ctx.cgroup_dirs() == []


def test_delete_created_container(ctx, bundle):
    b = bundle(default_config(["sleep", "1000"]))
    ctx.create(b).ok()
    pid = ctx.state(b.id)["pid"]
    ctx.run("delete", "--force", b.id).ok()
    assert ctx.run("state", b.id).rc != 0
    assert not os.path.exists(f"/proc/{pid}/status") or \
        "zombie" in open(f"/proc/{pid}/status").read()


def test_pid_file(ctx, bundle):
    b = bundle(default_config(["sleep", "1000"]))
    pidfile = ctx.dir / "container.pid"
    ctx.create(b, "--pid-file", pidfile).ok()
    assert int(pidfile.read_text().strip()) == ctx.state(b.id)["pid"]


def test_pid_file_relative_path(ctx, bundle):
    b = bundle(default_config(["sleep", "1000"]))
    workdir = ctx.hostdir("workdir", 0o755)
    ctx.run("create", "--bundle", b.path, "--pid-file", "rel.pid", b.id, cwd=workdir).ok()
    # Relative to the runtime's working directory.
    assert int((workdir / "rel.pid").read_text().strip()) == ctx.state(b.id)["pid"]


@pytest.mark.parametrize("code", [0, 3, 42, 255])
def test_run_propagates_exit_code(run_container, code):
    rc, out, err = run_container(sh(f"exit {code}"))
    assert rc == code, err


def test_run_prints_container_output(run_container):
    rc, out, err = run_container(sh("echo hello from the container; echo to stderr >&2"))
    assert rc == 0, err
    assert out == "hello from the container\n"
    assert "to stderr" in err


def test_run_deletes_container_afterwards(ctx, run_container):
    rc, out, err = run_container(sh("true"))
    assert rc == 0, err
    cid = ctx.last_bundle.id
    assert ctx.run("state", cid).rc != 0
    assert not (ctx.root / cid).exists()
    assert ctx.cgroup_dirs() == []


@pytest.mark.parametrize("sig,pidns,expected", [
    ("KILL", True, 128 + signal.SIGKILL),
    ("TERM", False, 128 + signal.SIGTERM),
], ids=["KILL-init", "TERM-no-pidns"])
def test_run_exit_status_for_signal(ctx, bundle, sig, pidns, expected):
    """Killed by signal n -> 128+n. PID 1 of a pid namespace ignores signals it
    has no handler for, so TERM is tested without a pid namespace."""
    config = sh("echo up > /out/up; exec sleep 1000")
    if not pidns:
        drop_namespace(config, "pid")
    b = bundle(config, out=True)
    p = ctx.popen("run", "--bundle", b.path, b.id)
    wait_file(b.out / "up")
    ctx.run("kill", b.id, sig).ok()
    r = p.result()
    assert r.rc == expected, str(r)


def test_run_forwards_signals(ctx, bundle):
    b = bundle(sh("trap 'echo got TERM > /out/sig; exit 42' TERM; echo up > /out/up; "
                  "while true; do sleep 1 & wait $!; done"), out=True)
    p = ctx.popen("run", "--bundle", b.path, b.id)
    wait_file(b.out / "up")
    p.send_signal(signal.SIGTERM)
    r = p.result()
    assert r.rc == 42, str(r)
    assert (b.out / "sig").read_text() == "got TERM\n"


def test_run_detach(ctx, bundle):
    b = bundle(sh("echo up > /out/up; exec sleep 1000"), out=True)
    r = ctx.run("run", "--detach", "--bundle", b.path, b.id).ok()
    wait_file(b.out / "up")
    assert ctx.state(b.id)["status"] == "running"
    ctx.run("kill", b.id, "KILL").ok()
    ctx.wait_status(b.id, "stopped")
    ctx.run("delete", b.id).ok()


def test_stopped_after_process_exits(ctx, bundle):
    b = bundle(sh("exit 0"))
    ctx.create(b).ok()
    ctx.run("start", b.id).ok()
    st = ctx.wait_status(b.id, "stopped")
    assert st["id"] == b.id
    ctx.run("delete", b.id).ok()


def _created(ctx, bundle, n=1):
    ids = []
    for _ in range(n):
        b = bundle(default_config(["sleep", "1000"]))
        ctx.create(b).ok()
        ids.append(b.id)
    return ids


def test_list_table(ctx, bundle):
    ids = _created(ctx, bundle, 2)
    out = ctx.run("list").ok().out
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["ID", "PID", "STATUS"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert set(rows) == set(ids)
    for cid in ids:
        assert rows[cid][1] == str(ctx.state(cid)["pid"])
        assert rows[cid][2] == "created"


def test_list_table_format_flag(ctx, bundle):
    ids = _created(ctx, bundle)
    out = ctx.run("list", "--format", "table").ok().out
    assert out.splitlines()[0].split()[0] == "ID"
    assert ids[0] in out


def test_list_json(ctx, bundle):
    ids = _created(ctx, bundle, 2)
    data = json.loads(ctx.run("list", "--format", "json").ok().out)
    assert isinstance(data, list)
    by_id = {c["id"]: c for c in data}
    assert set(by_id) == set(ids)
    for cid in ids:
        assert by_id[cid]["status"] == "created"
        assert by_id[cid]["pid"] == ctx.state(cid)["pid"]


def test_list_quiet(ctx, bundle):
    ids = _created(ctx, bundle, 2)
    out = ctx.run("list", "--quiet").ok().out
    assert sorted(out.split()) == sorted(ids)
    out = ctx.run("list", "-q").ok().out
    assert sorted(out.split()) == sorted(ids)


def test_list_empty(ctx):
    data = ctx.run("list", "--format", "json").ok().out.strip()
    assert data in ("", "null", "[]")
    assert ctx.run("list", "-q").ok().out.strip() == ""


def test_state_of_unknown_id_fails(ctx, cid):
    rc, out, err = ctx.run("state", cid)
    assert rc != 0
    assert out.strip() == ""
    assert err.strip() != ""


@pytest.mark.parametrize("cmd", [["start"], ["kill"], ["delete"]], ids=lambda c: c[0])
def test_commands_on_unknown_id_fail(ctx, cid, cmd):
    assert ctx.run(*cmd, cid).rc != 0


def test_delete_running_needs_force(ctx, bundle):
    b = bundle(default_config(["sleep", "1000"]))
    ctx.create(b).ok()
    ctx.run("start", b.id).ok()
    ctx.wait_status(b.id, "running")
    r = ctx.run("delete", b.id)
    assert r.rc != 0, str(r)
    assert ctx.state(b.id)["status"] == "running"
    pid = ctx.state(b.id)["pid"]
    ctx.run("delete", "--force", b.id).ok()
    assert ctx.run("state", b.id).rc != 0
    assert not (ctx.root / b.id).exists()
    assert ctx.cgroup_dirs() == []
    assert pid not in ctx.marked_pids()


@pytest.mark.parametrize("sig", ["KILL", "SIGKILL", "9"])
def test_kill_signal_forms_kill(ctx, bundle, sig):
    b = bundle(default_config(["sleep", "1000"]))
    ctx.create(b).ok()
    ctx.run("start", b.id).ok()
    ctx.run("kill", b.id, sig).ok()
    ctx.wait_status(b.id, "stopped")


@pytest.mark.parametrize("sig", ["TERM", "SIGTERM", "15", "USR1", None])
def test_kill_delivers_signal(ctx, bundle, sig):
    """The named signal reaches the process (default: SIGTERM)."""
    trap = "USR1" if sig == "USR1" else "TERM"
    b = bundle(sh(f"trap 'echo {trap} > /out/sig; exit 0' {trap}; echo up > /out/up; "
                  "while true; do sleep 1 & wait $!; done"), out=True)
    ctx.create(b).ok()
    ctx.run("start", b.id).ok()
    wait_file(b.out / "up")
    ctx.run("kill", b.id, *([sig] if sig else [])).ok()
    assert wait_file(b.out / "sig") == trap + "\n"
    ctx.wait_status(b.id, "stopped")


def test_kill_invalid_signal_fails(ctx, bundle):
    b = bundle(default_config(["sleep", "1000"]))
    ctx.create(b).ok()
    assert ctx.run("kill", b.id, "NOSUCHSIG").rc != 0
    assert ctx.state(b.id)["status"] == "created"


def test_kill_all(ctx, bundle):
    """Without a pid namespace, killing the init leaves its children; --all
    signals every process of the container."""
    config = sh("sleep 1000 & sleep 1000 & echo up > /out/up; wait")
    drop_namespace(config, "pid")
    b = bundle(config, out=True)
    ctx.create(b).ok()
    ctx.run("start", b.id).ok()
    wait_file(b.out / "up")
    from helpers import wait_for
    # a child in the middle of its exec has no readable environ for a moment
    wait_for(lambda: len(ctx.marked_pids()) >= 3, 10, "the shell and both sleeps")
    ctx.run("kill", "--all", b.id, "KILL").ok()
    ctx.wait_status(b.id, "stopped")
    wait_for(lambda: not ctx.marked_pids(), 10, "every container process to exit")
    ctx.run("delete", b.id).ok()


def test_kill_stopped_container_fails_or_noop(ctx, bundle):
    b = bundle(sh("exit 0"))
    ctx.create(b).ok()
    ctx.run("start", b.id).ok()
    ctx.wait_status(b.id, "stopped")
    ctx.run("kill", b.id, "KILL")  # either outcome is allowed, but no crash/hang
    assert ctx.state(b.id)["status"] == "stopped"
    ctx.run("delete", b.id).ok()


def test_preserve_fds(ctx, bundle):
    """--preserve-fds 1 passes the runtime's fd 3 to the container."""
    b = bundle(sh("ls /proc/self/fd > /out/fds; cat <&3 > /out/from-fd3"), out=True)
    data = ctx.dir / "fd3.txt"
    data.write_text("through fd 3\n")
    fd = os.open(data, os.O_RDONLY)

    def to_fd3():
        os.dup2(fd, 3)

    try:
        r = ctx.run("run", "--preserve-fds", "1", "--bundle", b.path, b.id,
                    pass_fds=(3,), preexec_fn=to_fd3)
    finally:
        os.close(fd)
    assert r.rc == 0, str(r)
    assert (b.out / "from-fd3").read_text() == "through fd 3\n"
    assert "3" in (b.out / "fds").read_text().split()


def test_bundle_defaults_to_cwd(ctx, bundle):
    b = bundle(default_config(["sleep", "1000"]))
    ctx.run("create", b.id, cwd=b.path).ok()
    st = ctx.state(b.id)
    assert os.path.isabs(st["bundle"])
    assert os.path.realpath(st["bundle"]) == os.path.realpath(b.path)


def test_relative_bundle_path_stored_absolute(ctx, bundle):
    b = bundle(default_config(["sleep", "1000"]))
    ctx.run("create", "--bundle", b.path.name, b.id, cwd=b.path.parent).ok()
    st = ctx.state(b.id)
    assert os.path.isabs(st["bundle"])
    assert os.path.realpath(st["bundle"]) == os.path.realpath(b.path)


@pytest.mark.parametrize("value", ["-3", "abc", "", "65537", "1x"])
def test_preserve_fds_is_validated_alike_in_create_and_exec(ctx, bundle, value):
    """One parser for --preserve-fds: a bad count is a usage error naming
    the option in create, run and exec alike (exec took atoi's guess)."""
    b = bundle(default_config(["sleep", "1000"]))
    for args in (["create", "--preserve-fds", value, "--bundle", b.path, b.id + "-x"],
                 ["run", "--preserve-fds", value, "--bundle", b.path, b.id + "-y"]):
        r = ctx.run(*args)
        assert r.rc != 0 and "--preserve-fds" in r.err, str(r)
    ctx.create(b).ok()
    r = ctx.run("exec", "--preserve-fds", value, b.id, "true")
    assert r.rc != 0 and "--preserve-fds" in r.err, str(r)
