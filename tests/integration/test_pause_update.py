"""pause / resume (the freezer: a paused container makes no progress, state
says "paused") and update (live limits change on the host and inside)."""

import json
import time

import pytest

from helpers import default_config, sh, wait_file, wait_for
from test_resources import MiB, cgroup_dir, memory_dir_or_skip, pure_v2, swap_limitable

# Counts as fast as it can into /out/count (the file may be seen empty
# between the truncation and the write: the content is compared as it is).
COUNTER = "i=0; while :; do i=$((i+1)); echo $i > /out/count; done"


def read(path):
    with open(path) as f:
        return f.read()


def test_pause_stops_progress_and_resume_restarts(ctx, bundle):
    b = bundle(sh(COUNTER), out=True)
    ctx.create(b).ok()
    ctx.run("start", b.id).ok()
    count = b.out / "count"
    wait_file(count)
    ctx.run("pause", b.id).ok()
    assert ctx.state(b.id)["status"] == "paused"
    frozen = read(count)
    for _ in range(5):  # a few looks, not a timing assertion
        time.sleep(0.1)
        assert read(count) == frozen, "the counter moved while the container was paused"
    ctx.run("resume", b.id).ok()
    assert ctx.state(b.id)["status"] == "running"
    wait_for(lambda: read(count) not in (frozen, ""), 10, "the counter to move after resume")


def test_paused_container_can_be_deleted(ctx, bundle):
    b = bundle(default_config(["sleep", "1000"]))
    ctx.create(b).ok()
    ctx.run("start", b.id).ok()
    ctx.run("pause", b.id).ok()
    ctx.run("delete", "--force", b.id).ok()
    assert ctx.run("state", b.id).rc != 0


def test_pause_resume_wrong_states(ctx, bundle):
    b = bundle(sh("while [ ! -e /out/stop ]; do sleep 0.05; done"), out=True)
    ctx.create(b).ok()
    ctx.run("start", b.id).ok()
    r = ctx.run("resume", b.id)
    assert r.rc != 0, f"resuming a running container succeeded:\n{r}"
    ctx.run("pause", b.id).ok()
    r = ctx.run("pause", b.id)
    assert r.rc != 0, f"pausing a paused container succeeded:\n{r}"
    ctx.run("resume", b.id).ok()
    (b.out / "stop").write_text("")
    ctx.wait_status(b.id, "stopped", timeout=30)
    r = ctx.run("pause", b.id)
    assert r.rc != 0, f"pausing a stopped container succeeded:\n{r}"
    r = ctx.run("resume", b.id)
    assert r.rc != 0, f"resuming a stopped container succeeded:\n{r}"
    assert ctx.run("pause", "no-such-container-" + b.id).rc != 0


@pytest.mark.isola_only
def test_pause_error_wording(ctx, bundle):
    b = bundle(default_config(["sleep", "1000"]))
    ctx.create(b).ok()
    ctx.run("start", b.id).ok()
    r = ctx.run("resume", b.id)
    assert f'container "{b.id}" is running, not paused: cannot resume it' in r.err, r.err


# The init runs step N when /out/goN appears and records the exit status of
# its memory hog in /out/rcN; the hog, not the init, is the OOM victim.
STEPS = ("n=1; while :; do while [ ! -e /out/go$n ]; do sleep 0.05; done; "
         "sh -c 'echo 1000 > /proc/self/oom_score_adj; exec dd if=/dev/zero of=/dev/null bs=40M count=1' "
         ">/dev/null 2>&1; echo $? > /out/rc$n; n=$((n+1)); done")


def step(b, n):
    (b.out / f"go{n}").write_text("")
    return wait_file(b.out / f"rc{n}", timeout=30).strip()


def test_update_memory_limit(ctx, bundle):
    config = sh(STEPS)
    config["linux"]["resources"]["memory"] = swap_limitable(256 * MiB)
    b = bundle(config, out=True)
    ctx.create(b).ok()
    d = memory_dir_or_skip(ctx.state(b.id)["pid"])
    ctx.run("start", b.id).ok()
    assert step(b, 1) == "0"  # 40 MiB fit under 256 MiB

    swap = ["--memory-swap", "24m"] if "swap" in config["linux"]["resources"]["memory"] else []
    ctx.run("update", "--memory", "24m", *swap, b.id).ok()
    name = "memory.max" if d.startswith("/sys/fs/cgroup/unified") or pure_v2() else "memory.limit_in_bytes"
    assert read(f"{d}/{name}").strip() == str(24 * MiB)
    assert step(b, 2) == "137"  # now they do not
    assert ctx.state(b.id)["status"] == "running"

    ctx.run("update", "--memory", "256m", *(["--memory-swap", "256m"] if swap else []), b.id).ok()
    assert read(f"{d}/{name}").strip() == str(256 * MiB)
    assert step(b, 3) == "0"


# Step N: a child shell starts up to 6 sleeps, writing their pids after each
# fork (it dies at the first fork that fails); the init kills them with
# builtins only (no fork needed) and records how many started.
PIDS_STEPS = ("n=1; while :; do while [ ! -e /out/go$n ]; do sleep 0.05; done; "
              ": > /out/pids; "
              "sh -c 'p=; for i in 1 2 3 4 5 6; do sleep 1000 & p=\"$p $!\"; echo $p > /out/pids; done' "
              "2>/dev/null; read p < /out/pids; kill $p; set -- $p; echo $# > /out/rc$n; "
              "n=$((n+1)); done")


def test_update_pids_limit_from_file(ctx, bundle):
    config = sh(PIDS_STEPS)
    config["linux"]["resources"]["pids"] = {"limit": 100}
    b = bundle(config, out=True)
    ctx.create(b).ok()
    d = cgroup_dir(ctx.state(b.id)["pid"], "pids")
    if d is None:
        pytest.skip("no pids controller for the container on this host")
    ctx.run("start", b.id).ok()
    assert step(b, 1) == "6"
    res = ctx.dir / "resources.json"
    res.write_text(json.dumps({"pids": {"limit": 4}}))
    ctx.run("update", "-r", res, b.id).ok()
    assert read(f"{d}/pids.max").strip() == "4"
    assert int(step(b, 2)) < 6  # forks failed
    ctx.run("update", "--pids-limit", "100", b.id).ok()
    assert read(f"{d}/pids.max").strip() == "100"


def test_update_resources_from_stdin(ctx, bundle):
    b = bundle(default_config(["sleep", "1000"]))
    ctx.create(b).ok()
    d = cgroup_dir(ctx.state(b.id)["pid"], "pids")
    if d is None:
        pytest.skip("no pids controller for the container on this host")
    with open(ctx.dir / "r.json", "w+") as f:
        json.dump({"pids": {"limit": 17}}, f)
        f.seek(0)
        ctx.run("update", "-r", "-", b.id, stdin=f).ok()
    assert read(f"{d}/pids.max").strip() == "17"


def test_update_cpu_quota(ctx, bundle):
    b = bundle(default_config(["sleep", "1000"]))
    ctx.create(b).ok()
    d = cgroup_dir(ctx.state(b.id)["pid"], "cpu")
    if d is None:
        pytest.skip("no cpu controller for the container on this host")
    ctx.run("update", "--cpu-period", "100000", "--cpu-quota", "20000", b.id).ok()
    try:
        assert read(f"{d}/cpu.max").split() == ["20000", "100000"]
    except FileNotFoundError:
        assert read(f"{d}/cpu.cfs_quota_us").strip() == "20000"
        assert read(f"{d}/cpu.cfs_period_us").strip() == "100000"


def test_update_stopped_container_fails(ctx, bundle):
    b = bundle(sh("true"))
    ctx.create(b).ok()
    ctx.run("start", b.id).ok()
    ctx.wait_status(b.id, "stopped", timeout=30)
    r = ctx.run("update", "--pids-limit", "10", b.id)
    assert r.rc != 0, str(r)


@pytest.mark.parametrize("args", [["--memory", "lots"], ["--cpu-quota", "x"], ["--pids-limit", "1.5"]])
def test_update_bad_flag_values(ctx, bundle, args):
    b = bundle(default_config(["sleep", "1000"]))
    ctx.create(b).ok()
    r = ctx.run("update", *args, b.id)
    assert r.rc != 0, str(r)


@pytest.mark.isola_only
def test_update_resources_file_error_names_field(ctx, bundle):
    b = bundle(default_config(["sleep", "1000"]))
    ctx.create(b).ok()
    res = ctx.dir / "resources.json"
    res.write_text('{"memory": {"limit": "lots"}}')
    r = ctx.run("update", "-r", res, b.id)
    assert r.rc != 0
    assert f"{res}: memory.limit: expected integer, got string" in r.err, r.err
