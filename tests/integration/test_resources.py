"""linux.resources as the container and the host observe them: a memory limit
OOM-kills (and `events` reports it), a pids limit makes fork fail, a cpu quota
throttles, cpus pins, device rules deny; and `ps` / `events --stats` report the
container's processes and counters. Works on v1, hybrid and v2 hosts."""

import json
import os
import subprocess

import pytest

import helpers
from helpers import default_config, sh, wait_file, wait_for

CG = "/sys/fs/cgroup"
MiB = 1024 * 1024


def pure_v2():
    return os.path.exists(f"{CG}/cgroup.controllers")


def cgroup_dir(pid, controller):
    """Host directory of the process's cgroup serving `controller` (a v1
    hierarchy holding it, else the cgroup2 directory if it is enabled there);
    None if the host has no such controller."""
    with open(f"/proc/{pid}/cgroup") as f:
        lines = [line.rstrip("\n").split(":", 2) for line in f]
    for h, ctrls, path in lines:
        if h != "0" and controller in ctrls.split(","):
            for name in (ctrls, controller):
                if os.path.isdir(f"{CG}/{name}{path}"):
                    return f"{CG}/{name}{path}"
    for h, ctrls, path in lines:
        if h == "0" and not ctrls:
            base = CG if pure_v2() else f"{CG}/unified"
            d = base + path
            try:
                with open(f"{d}/cgroup.controllers") as f:
                    enabled = f.read().split()
            except OSError:
                return None
            return d if controller in enabled else None
    return None


def read_kv(path):
    with open(path) as f:
        return {k: int(v) for k, v in (line.split()[:2] for line in f if len(line.split()) >= 2
                                      and line.split()[1].isdigit())}


def memory_dir_or_skip(pid):
    d = cgroup_dir(pid, "memory")
    if d is None:
        pytest.skip("no memory controller for the container on this host")
    return d


def swap_limitable(config_limit):
    """Memory limit settings that also keep the container out of swap where the
    host can limit swap (v1 memsw, v2 memory.swap.max); without swap on the
    host nothing needs limiting."""
    mem = {"limit": config_limit}
    v1 = f"{CG}/memory/memory.memsw.limit_in_bytes"
    if os.path.exists(v1) or pure_v2():
        mem["swap"] = config_limit
    elif any(line.strip() for line in open("/proc/swaps").readlines()[1:]):
        pytest.skip("the host has swap but cannot limit it (no swap accounting)")
    return mem


# The process that should be the OOM victim says so; the init keeps running.
HOG = "echo 1000 > /proc/self/oom_score_adj; exec dd if=/dev/zero of=/dev/null bs=64M count=1"


def wait_stopped(ctx, cid):
    return ctx.wait_status(cid, "stopped", timeout=30)


def test_memory_limit_oom_kills(ctx, bundle):
    config = sh(f"sh -c '{HOG}'; echo $? > /out/status; exec sleep 1000")
    config["linux"]["resources"]["memory"] = swap_limitable(32 * MiB)
    b = bundle(config, out=True)
    ctx.create(b).ok()
    pid = ctx.state(b.id)["pid"]
    mdir = memory_dir_or_skip(pid)
    ctx.run("start", b.id).ok()
    status = wait_file(b.out / "status", timeout=30).strip()
    assert status == "137", f"the hog was not killed by SIGKILL: exit status {status}"
    # Usage reached the limit (failcnt is not counted by every kernel when
    # memory+swap is limited too), and the kernel counted an OOM kill.
    if os.path.exists(f"{mdir}/memory.oom_control"):  # v1
        with open(f"{mdir}/memory.max_usage_in_bytes") as f:
            assert int(f.read()) >= 30 * MiB
        oom = read_kv(f"{mdir}/memory.oom_control")
    else:
        if os.path.exists(f"{mdir}/memory.peak"):
            with open(f"{mdir}/memory.peak") as f:
                assert int(f.read()) >= 30 * MiB
        oom = read_kv(f"{mdir}/memory.events")
        assert oom.get("max", 0) > 0, oom
    assert oom.get("oom_kill", 0) >= 1, oom
    assert ctx.state(b.id)["status"] == "running"  # only the hog died


def spawn_events(ctx, cid, *args):
    """`events` in the background, its output in a file the test can poll."""
    path = ctx.dir / f"events-{cid}.out"
    out = open(path, "w")
    proc = ctx.spawn(ctx.argv(["events", *args, cid]), stdout=out, stderr=subprocess.STDOUT,
                     env=ctx._env(None))
    out.close()

    def events():
        with open(path) as f:
            return [json.loads(line) for line in f.read().splitlines() if line.startswith("{")]
    events.proc = proc
    events.path = path
    return events


def test_events_reports_oom(ctx, bundle):
    config = sh("while [ ! -e /out/go ]; do sleep 0.05; done; "
                f"sh -c '{HOG}'; echo $? > /out/status; exec sleep 1000")
    config["linux"]["resources"]["memory"] = swap_limitable(32 * MiB)
    b = bundle(config, out=True)
    ctx.create(b).ok()
    memory_dir_or_skip(ctx.state(b.id)["pid"])
    ctx.run("start", b.id).ok()
    events = spawn_events(ctx, b.id, "--interval", "100ms")
    # A stats event shows the loop runs (the OOM watch is set up before it).
    wait_for(lambda: any(e["type"] == "stats" for e in events()), 20, "a stats event")
    (b.out / "go").write_text("")
    assert wait_file(b.out / "status", timeout=30).strip() == "137"
    wait_for(lambda: any(e["type"] == "oom" for e in events()), 20, "an oom event")
    oom = [e for e in events() if e["type"] == "oom"][0]
    assert oom == {"type": "oom", "id": b.id}


@pytest.mark.xfail_runtime("runc", reason="events runs on after the container stopped, "
                          "until its cgroup is removed")
def test_events_ends_when_container_stops(ctx, bundle):
    b = bundle(sh("while [ ! -e /out/stop ]; do sleep 0.05; done"), out=True)
    ctx.create(b).ok()
    ctx.run("start", b.id).ok()
    events = spawn_events(ctx, b.id, "--interval", "100ms")
    wait_for(lambda: events(), 20, "a first stats event")
    (b.out / "stop").write_text("")
    wait_for(lambda: events.proc.poll() is not None, 15, "events to exit after the container stopped")
    assert events.proc.returncode == 0, events.path.read_text()
    assert all(e["type"] == "stats" for e in events())


def test_pids_limit_fork_fails(run_container):
    config = sh("n=0; for i in 1 2 3 4 5 6 7 8 9 10; do sleep 1000 & n=$((n+1)); done; "
                "echo started=$n; ls /proc | grep -c '^[0-9]'")
    config["linux"]["resources"]["pids"] = {"limit": 5}
    rc, out, err = run_container(config)
    text = out + err
    assert "started=10" not in text, text
    assert "fork" in text.lower() or "resource temporarily unavailable" in text.lower(), text


def test_pids_limit_on_host(ctx, bundle):
    config = default_config(["sleep", "1000"])
    config["linux"]["resources"]["pids"] = {"limit": 5}
    b = bundle(config)
    ctx.create(b).ok()
    d = cgroup_dir(ctx.state(b.id)["pid"], "pids")
    if d is None:
        pytest.skip("no pids controller for the container on this host")
    with open(f"{d}/pids.max") as f:
        assert f.read().strip() == "5"


def test_cpu_quota_throttles(ctx, bundle):
    config = sh("while :; do :; done")
    config["linux"]["resources"]["cpu"] = {"quota": 10000, "period": 100000}
    b = bundle(config)
    ctx.create(b).ok()
    d = cgroup_dir(ctx.state(b.id)["pid"], "cpu")
    if d is None:
        pytest.skip("no cpu controller for the container on this host")
    ctx.run("start", b.id).ok()
    stat = wait_for(lambda: (lambda s: s.get("nr_throttled", 0) > 0 and s)(
        read_kv(f"{d}/cpu.stat")), 30, "nr_throttled > 0 in cpu.stat")
    assert stat["nr_periods"] >= stat["nr_throttled"] > 0
    r = ctx.run("events", "--stats", b.id).ok()
    throttling = json.loads(r.out)["data"]["cpu"]["throttling"]
    assert throttling["throttledPeriods"] > 0, throttling


def test_cpus_pins_process(run_container):
    config = sh("grep Cpus_allowed_list /proc/self/status")
    config["linux"]["resources"]["cpu"] = {"cpus": "0", "mems": "0"}
    rc, out, err = run_container(config)
    assert rc == 0, err
    assert helpers.proc_status(out)["Cpus_allowed_list"] == "0"


def test_device_rules_deny_open(run_container):
    """The default config denies every device but the defaults (/dev/null,
    /dev/zero, ...): a node for another device (1:11, kmsg) can be made (mknod
    is allowed for all) but not opened; an allow rule for it lets it open."""
    script = ("mknod /dev/k c 1 11 || exit 9; "
              "if (exec 3>/dev/k) 2>/out/err; then echo open=ok; else echo open=denied; fi; "
              "cat /out/err")
    config = sh(script)
    for s in ("bounding", "effective", "permitted"):
        config["process"]["capabilities"][s].append("CAP_MKNOD")
    rc, out, err = run_container(config, out=True)
    assert rc == 0, err
    assert "open=denied" in out, out
    assert "Operation not permitted" in out, out

    config = sh(script)
    for s in ("bounding", "effective", "permitted"):
        config["process"]["capabilities"][s].append("CAP_MKNOD")
    config["linux"]["resources"]["devices"].append(
        {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "w"})
    rc, out, err = run_container(config, out=True)
    assert rc == 0, err
    assert "open=ok" in out, out


def test_ps_lists_container_pids(ctx, bundle):
    b = bundle(sh("sleep 1000 & sleep 1000 & exec sleep 1000"))
    ctx.create(b).ok()
    ctx.run("start", b.id).ok()
    init = ctx.state(b.id)["pid"]
    d = cgroup_dir(init, "pids") or cgroup_dir(init, "memory") or cgroup_dir(init, "cpu")

    def three():
        r = ctx.run("ps", "--format", "json", b.id).ok()
        pids = json.loads(r.out)
        return len(pids) == 3 and pids
    pids = wait_for(three, 20, "three processes in the container")
    assert init in pids
    if d:
        with open(f"{d}/cgroup.procs") as f:
            assert sorted(int(x) for x in f.read().split()) == sorted(pids)
    r = ctx.run("ps", b.id).ok()
    lines = r.out.splitlines()
    assert "PID" in lines[0].split() and "CMD" in lines[0].split(), r.out
    col = lines[0].split().index("PID")
    assert sorted(int(line.split()[col]) for line in lines[1:]) == sorted(pids)
    assert all("sleep" in line for line in lines[1:]), r.out
    r = ctx.run("ps", b.id, "-o", "pid,comm").ok()
    assert r.out.split()[:2] == ["PID", "COMMAND"], r.out
    assert sorted(int(line.split()[0]) for line in r.out.splitlines()[1:]) == sorted(pids)


def test_events_stats(ctx, bundle):
    config = default_config(["sleep", "1000"])
    config["linux"]["resources"]["memory"] = {"limit": 64 * MiB}
    config["linux"]["resources"]["pids"] = {"limit": 50}
    b = bundle(config)
    ctx.create(b).ok()
    ctx.run("start", b.id).ok()
    pid = ctx.state(b.id)["pid"]
    r = ctx.run("events", "--stats", b.id).ok()
    lines = r.out.splitlines()
    assert len(lines) == 1, r.out
    ev = json.loads(lines[0])
    assert ev["type"] == "stats" and ev["id"] == b.id
    data = ev["data"]
    for key in ("cpu", "memory", "pids", "blkio", "hugetlb"):
        assert key in data, data.keys()
    if cgroup_dir(pid, "memory"):
        assert data["memory"]["usage"]["usage"] > 0
        assert data["memory"]["usage"]["limit"] == 64 * MiB
        assert "raw" in data["memory"]
    if cgroup_dir(pid, "pids"):
        assert data["pids"] == {"current": 1, "limit": 50}
    assert data["cpu"]["usage"]["total"] > 0


def test_events_stopped_container_fails(ctx, bundle):
    b = bundle(sh("true"))
    ctx.create(b).ok()
    ctx.run("start", b.id).ok()
    wait_stopped(ctx, b.id)
    r = ctx.run("events", "--stats", b.id)
    assert r.rc != 0, str(r)
    r = ctx.run("events", b.id)
    assert r.rc != 0, str(r)


@pytest.mark.parametrize("interval", ["0", "-1s", "5", "abc"])
def test_events_bad_interval(ctx, bundle, interval):
    b = bundle(default_config(["sleep", "1000"]))
    ctx.create(b).ok()
    r = ctx.run("events", "--interval", interval, b.id)
    assert r.rc != 0, str(r)


def test_events_interval_go_duration(ctx, bundle):
    b = bundle(default_config(["sleep", "1000"]))
    ctx.create(b).ok()
    ctx.run("start", b.id).ok()
    events = spawn_events(ctx, b.id, "--interval", "0.05s")
    got = wait_for(lambda: (lambda e: len(e) >= 2 and e)(events()), 20, "two stats events")
    assert all(e["type"] == "stats" and e["id"] == b.id for e in got)
