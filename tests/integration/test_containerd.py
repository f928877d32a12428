"""containerd (1.6) with its runc v2 shim driving isola-oci: `ctr run
--runc-binary` (the shim's runtime option BinaryName) for run, exec, kill,
pause/resume, `tasks ps` and `tasks metrics`. The tests start a containerd
of their own (config, root, state, sockets, fifos and the runtime's --root
under one temp directory, a namespace of their own, CRI and /opt plugins
off) and stop it afterwards. A failing step prints what ctr said, what
isola-oci logged and the end of containerd's log."""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from clients import (CGROUP_ROOT, cgroup_value, kill_and_unmount, mounts_under, need, ok,
                     pids_with_arg, run, run_pty, tail)


class Containerd:
    def __init__(self, runtime, rootfs):
        self.runtime = str(runtime)
        self.rootfs = rootfs
        self.dir = Path(tempfile.mkdtemp(prefix="isola-ctd.", dir="/tmp"))
        os.chmod(self.dir, 0o755)
        self.sock = self.dir / "containerd.sock"
        self.ns = f"isola-it-{os.getpid()}"
        self.runc_root = self.dir / "runtime-state"
        self.fifos = self.dir / "fifo"
        self.log = self.dir / "containerd.log"
        self.ids = []
        self.proc = None
        self.run_containerd_existed = Path("/run/containerd").exists()

    def start(self):
        d = self.dir
        (d / "config.toml").write_text(f"""\
version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.internal.v1.opt",
                    "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
                    "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]

[grpc]
  address = "{self.sock}"

[ttrpc]
  address = "{self.sock}.ttrpc"
""")
        self.logf = open(self.log, "w")
        self.proc = subprocess.Popen(["containerd", "--config", str(d / "config.toml")],
                                     stdout=self.logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 20
        while self.ctr("version").rc != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("containerd did not start:\n" + tail(self.log))
            time.sleep(0.1)
        return self

    def diag(self):
        logs = sorted(self.runc_root.glob("**/log.json")) + sorted(self.dir.glob("state/**/log.json"))
        text = "\n".join(f"--- {p}\n{tail(p, 10)}" for p in logs)
        return f"{text}\n--- containerd log (end)\n{tail(self.log, 15)}"

    def ctr(self, *args, timeout=60):
        return run(["ctr", "--address", self.sock, "--namespace", self.ns, *args],
                   timeout=timeout, diag=self.diag)

    def bundle_rootfs(self, cid):
        dest = self.dir / "rootfs" / cid
        dest.parent.mkdir(exist_ok=True)
        subprocess.run(["cp", "-a", str(self.rootfs), str(dest)], check=True)
        return dest

    def run_args(self, cid, *opts):
        self.ids.append(cid)
        # Without an image config ctr sets no PATH; runc then finds no "sh".
        return ["run", "--runc-binary", self.runtime, "--runc-root", self.runc_root,
                "--fifo-dir", self.fifos, "--env", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", *opts,
                "--rootfs", self.bundle_rootfs(cid), cid]

    def remove(self, cid):
        self.ctr("tasks", "kill", "--signal", "SIGKILL", cid)
        for _ in range(50):
            if self.ctr("tasks", "rm", "--force", cid).rc != 0:
                break  # no task (left)
            time.sleep(0.1)
        self.ctr("containers", "rm", cid)

    def stop(self, own_parent_cgroup=True):
        """Stop everything; own_parent_cgroup: the runtime removes the
        namespace's parent cgroup it created (isola-oci does, runc does not)."""
        problems = []
        if self.proc and self.proc.poll() is None:
            for cid in self.ids:
                self.remove(cid)
            left = self.ctr("containers", "ls", "-q").out.split()
            if left:
                problems.append(f"containers {left}")
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                problems.append("containerd did not stop on SIGTERM")
        if self.proc:
            self.logf.close()
        if pids_with_arg(str(self.dir)):
            problems.append(f"processes {pids_with_arg(str(self.dir))}")
        if mounts_under(self.dir):
            problems.append(f"mounts {mounts_under(self.dir)}")
        for h in [CGROUP_ROOT] + [p for p in CGROUP_ROOT.iterdir() if p.is_dir()]:
            if (h / self.ns).is_dir():
                if own_parent_cgroup or any(p.is_dir() for p in (h / self.ns).iterdir()):
                    problems.append(f"cgroup {h / self.ns}")
                subprocess.run(["find", str(h / self.ns), "-depth", "-type", "d", "-delete"],
                               stderr=subprocess.DEVNULL)
        if self.runc_root.is_dir():
            left = [p.name for p in (self.runc_root / self.ns).glob("*")] \
                if (self.runc_root / self.ns).is_dir() else []
            if left:
                problems.append(f"isola-oci state {left}")
        kill_and_unmount(self.dir)
        shutil.rmtree(self.dir, ignore_errors=True)
        if not self.run_containerd_existed:
            # The shim puts its sockets in /run/containerd/s whatever the config says.
            subprocess.run(["find", "/run/containerd", "-depth", "-type", "d", "-empty", "-delete"],
                           stderr=subprocess.DEVNULL)
        return problems


@pytest.fixture(scope="module")
def ctd(runtime_bin, rootfs, runtime_name):
    need("containerd", "containerd")
    need("ctr", "containerd")
    need("containerd-shim-runc-v2", "containerd")
    c = Containerd(runtime_bin, rootfs)
    try:
        yield c.start()
    finally:
        problems = c.stop(own_parent_cgroup=runtime_name == "isola")
    assert not problems, "left behind: " + "; ".join(problems)


_n = [0]


@pytest.fixture
def cid(ctd):
    _n[0] += 1
    name = f"it{os.getpid()}-{_n[0]}"
    yield name
    ctd.remove(name)
    assert not (ctd.runc_root / ctd.ns / name).exists(), "isola-oci state left behind"


def task_status(ctd, cid):
    for line in ok(ctd.ctr("tasks", "ls")).out.splitlines()[1:]:
        f = line.split()
        if f and f[0] == cid:
            return f[2]
    return None


def wait_status(ctd, cid, status, timeout=10):
    deadline = time.monotonic() + timeout
    while task_status(ctd, cid) != status:
        if time.monotonic() > deadline:
            raise AssertionError(f"task {cid} is {task_status(ctd, cid)}, not {status}\n{ctd.diag()}")
        time.sleep(0.05)


def task_pid(ctd, cid):
    for line in ok(ctd.ctr("tasks", "ls")).out.splitlines()[1:]:
        f = line.split()
        if f and f[0] == cid:
            return int(f[1])
    raise AssertionError(f"no task {cid}")


def test_run_foreground_output_and_exit_code(ctd, cid):
    r = ctd.ctr(*ctd.run_args(cid, "--rm"), "sh", "-c", "echo hi from isola; exit 3")
    assert r.rc == 3, str(r)
    assert r.out == "hi from isola\n", str(r)


@pytest.mark.isola_only
def test_shim_drives_isola_oci(ctd, cid):
    ok(ctd.ctr(*ctd.run_args(cid, "-d"), "sleep", "100"))
    pid = task_pid(ctd, cid)
    # isola-oci's state, under the --root the shim passed (runc-root / namespace).
    state = json.loads(ok(run([ctd.runtime, "--root", ctd.runc_root / ctd.ns, "state", cid])).out)
    assert state["pid"] == pid and state["status"] == "running", state
    assert f"/{ctd.ns}/{cid}" in Path(f"/proc/{pid}/cgroup").read_text()


TRAP = ("trap 'echo got-term; exit 7' TERM; trap 'echo got-usr1 >> /tmp/sig' USR1; "
        "touch /tmp/ready; while :; do sleep 0.1; done")


def wait_ready(ctd, cid):
    deadline = time.monotonic() + 10
    while ctd.ctr("tasks", "exec", "--exec-id", "ready", "--fifo-dir", ctd.fifos, cid,
                  "test", "-f", "/tmp/ready").rc != 0:
        assert time.monotonic() < deadline, ctd.diag()
        time.sleep(0.1)


def test_exec(ctd, cid):
    ok(ctd.ctr(*ctd.run_args(cid, "-d", "--env", "FOO=bar"), "sleep", "100"))
    r = ok(ctd.ctr("tasks", "exec", "--exec-id", "e1", "--fifo-dir", ctd.fifos, cid,
                   "sh", "-c", "echo $FOO; cat /proc/1/cmdline | tr '\\0' ' '"))
    assert r.out.splitlines() == ["bar", "sleep 100 "], str(r)
    r = ctd.ctr("tasks", "exec", "--exec-id", "e2", "--fifo-dir", ctd.fifos, cid, "sh", "-c", "exit 5")
    assert r.rc == 5, str(r)
    r = ok(ctd.ctr("tasks", "exec", "--exec-id", "e3", "--fifo-dir", ctd.fifos, "--user", "1000",
                   "--cwd", "/tmp", cid, "sh", "-c", "id -u; pwd"))
    assert r.out.split() == ["1000", "/tmp"], str(r)


def test_exec_with_terminal(ctd, cid):
    ok(ctd.ctr(*ctd.run_args(cid, "-d"), "sleep", "100"))
    rc, screen = run_pty(["ctr", "--address", ctd.sock, "--namespace", ctd.ns, "tasks", "exec",
                          "-t", "--exec-id", "tty1", "--fifo-dir", ctd.fifos, cid, "sh"],
                         "tty; echo X$((6*7))Y; exit 4\r")
    assert rc == 4 and "X42Y" in screen and "/dev/pts/" in screen, screen + ctd.diag()


def test_kill(ctd, cid):
    ok(ctd.ctr(*ctd.run_args(cid, "-d"), "sh", "-c", TRAP))
    wait_ready(ctd, cid)
    ok(ctd.ctr("tasks", "kill", "--signal", "SIGUSR1", cid))
    deadline = time.monotonic() + 10
    while "got-usr1" not in ctd.ctr("tasks", "exec", "--exec-id", "sig", "--fifo-dir", ctd.fifos,
                                    cid, "cat", "/tmp/sig").out:
        assert time.monotonic() < deadline, ctd.diag()
        time.sleep(0.1)
    ok(ctd.ctr("tasks", "kill", cid))  # SIGTERM
    wait_status(ctd, cid, "STOPPED")
    r = ok(ctd.ctr("tasks", "rm", cid))
    assert "exit with non-zero exit code 7" in r.err or r.rc == 0, str(r)


def test_kill_all(ctd, cid):
    ok(ctd.ctr(*ctd.run_args(cid, "-d"), "sh", "-c", "sleep 100 & sleep 100"))
    ok(ctd.ctr("tasks", "kill", "--all", "--signal", "SIGKILL", cid))
    wait_status(ctd, cid, "STOPPED")


def test_pause_resume(ctd, cid):
    ok(ctd.ctr(*ctd.run_args(cid, "-d"), "sleep", "100"))
    pid = task_pid(ctd, cid)
    ok(ctd.ctr("tasks", "pause", cid))
    assert task_status(ctd, cid) == "PAUSED"
    assert cgroup_value(pid, "freezer", "freezer.state", "cgroup.freeze") in ("FROZEN", "1")
    ok(ctd.ctr("tasks", "resume", cid))
    assert task_status(ctd, cid) == "RUNNING"
    assert cgroup_value(pid, "freezer", "freezer.state", "cgroup.freeze") in ("THAWED", "0")


def test_tasks_ps(ctd, cid):
    ok(ctd.ctr(*ctd.run_args(cid, "-d"), "sh", "-c", "sleep 100 & exec sleep 101"))
    pid = task_pid(ctd, cid)
    deadline = time.monotonic() + 10
    while True:
        pids = [int(l.split()[0]) for l in ok(ctd.ctr("tasks", "ps", cid)).out.splitlines()[1:]]
        if len(pids) == 2:
            break
        assert time.monotonic() < deadline, pids
        time.sleep(0.05)
    assert pid in pids
    cmds = sorted(Path(f"/proc/{p}/cmdline").read_bytes() for p in pids)
    assert cmds == [b"sleep\x00100\x00", b"sleep\x00101\x00"], cmds


def test_tasks_metrics(ctd, cid):
    ok(ctd.ctr(*ctd.run_args(cid, "-d", "--memory-limit", str(64 << 20)), "sh", "-c",
               "sleep 100 & exec sleep 101"))
    r = ok(ctd.ctr("tasks", "metrics", "--format", "json", cid))
    m = json.loads(r.out)
    data = m.get("Data") or m.get("data") or m
    text = json.dumps(data)
    assert str(64 << 20) in text, text  # the memory limit
    pids = data.get("pids") or data.get("Pids") or {}
    assert pids.get("current", pids.get("Current")) == 2, text
    memory = data.get("memory") or data.get("Memory") or {}
    usage = (memory.get("usage") or {}).get("usage", memory.get("usage_in_bytes"))
    assert usage, text
