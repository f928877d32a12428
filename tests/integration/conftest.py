"""Fixtures for the integration tests: which runtime binary is under test, the
busybox rootfs, one scratch directory and one --root state directory per test,
a bundle factory, helpers that drive the runtime like a user would, and a
teardown that removes anything a container left and fails the test if the
runtime left it (state directory, cgroup, process, host mount)."""

import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import helpers  # noqa: E402
from helpers import MARKER_ENV, write_json  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("ISOLA_BUILD") or REPO / "build").resolve()
RUNTIME = Path(os.environ.get("ISOLA_RUNTIME") or BUILD / "isola-oci")
CGROUP_ROOT = Path("/sys/fs/cgroup")
COMMAND_TIMEOUT = float(os.environ.get("ISOLA_IT_TIMEOUT", "20"))  # one runtime command
# A runtime that hangs would make every test wait for its timeout and the run
# outlast CI's limit: after this many timeouts the session stops.
MAX_TIMEOUTS = 5
_timeouts = [0]


def _runtime_name():
    """'isola', 'runc', 'crun' or the binary's basename."""
    base = RUNTIME.name
    for name in ("isola", "runc", "crun"):
        if base.startswith(name):
            return name
    try:
        out = subprocess.run([str(RUNTIME), "--version"], capture_output=True, text=True,
                             timeout=10).stdout.lower()
    except (OSError, subprocess.SubprocessError):
        return base
    for name in ("isola", "runc", "crun"):
        if out.startswith(name) or f"{name} version" in out:
            return name
    return base


RUNTIME_NAME = _runtime_name()


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "isola_only: isola-specific behaviour (exact wording, features output); "
        "skipped when the runtime under test is not isola-oci")
    config.addinivalue_line(
        "markers", "xfail_runtime(name, reason): a known failure of another runtime "
        "(e.g. a runc bug); expected to fail only when that runtime is under test "
        "(strict unless strict=False is given, for races)")


def pytest_report_header(config):
    return [f"runtime under test: {RUNTIME} ({RUNTIME_NAME})", f"build dir: {BUILD}"]


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("isola_only") and RUNTIME_NAME != "isola":
            item.add_marker(pytest.mark.skip(
                reason=f"isola-specific behaviour; runtime under test is {RUNTIME_NAME}"))
        for mark in item.iter_markers("xfail_runtime"):
            if mark.args and mark.args[0] == RUNTIME_NAME:
                item.add_marker(pytest.mark.xfail(
                    reason=f"{RUNTIME_NAME}: {mark.kwargs.get('reason', '')}",
                    strict=mark.kwargs.get("strict", True)))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture(scope="session")
def runtime_bin():
    if not RUNTIME.exists():
        pytest.fail(f"runtime under test {RUNTIME} does not exist: build it with `make` "
                    "or point ISOLA_RUNTIME at a runtime binary", pytrace=False)
    return RUNTIME


@pytest.fixture(scope="session")
def runtime_name():
    return RUNTIME_NAME


@pytest.fixture(scope="session")
def scratch_base():
    """Session directory for bundles. World-searchable (0755), so containers in a
    user namespace can reach their rootfs."""
    base = tempfile.mkdtemp(prefix="isola-it.", dir="/tmp")
    os.chmod(base, 0o755)
    yield Path(base)
    if not _mounts_under(base):
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def rootfs(scratch_base):
    built = BUILD / "rootfs"
    if (built / "bin" / "busybox").exists():
        return built
    dest = scratch_base / "rootfs"
    subprocess.run([str(REPO / "scripts" / "mkrootfs.sh"), str(dest)], check=True)
    return dest


class Result(tuple):
    """(rc, out, err) of one runtime command; also .rc, .out, .err."""

    def __new__(cls, rc, out, err, argv=()):
        self = super().__new__(cls, (rc, out, err))
        self.argv = argv
        return self

    rc = property(lambda self: self[0])
    out = property(lambda self: self[1])
    err = property(lambda self: self[2])

    def __str__(self):
        return (f"$ {' '.join(map(str, self.argv))}\nexit {self.rc}\n"
                f"--- stdout\n{self.out}--- stderr\n{self.err}")

    def ok(self):
        """Assert exit status 0; return self."""
        assert self.rc == 0, str(self)
        return self


class Bundle:
    def __init__(self, ctx, path, cid, config):
        self.ctx = ctx
        self.path = Path(path)
        self.id = cid
        self.rootfs = self.path / "rootfs"
        self.config = config
        self.out = None  # host directory bind-mounted at /out, when asked for

    def write(self):
        """Write config.json, adding the teardown marker to the process and hooks env."""
        c = self.config
        if c is None:
            return self
        proc = c.get("process")
        if isinstance(proc, dict):
            env = proc.setdefault("env", [])
            if isinstance(env, list) and not any(
                    isinstance(e, str) and e.startswith(MARKER_ENV + "=") for e in env):
                env.append(f"{MARKER_ENV}={self.ctx.token}")
        for hooks in (c.get("hooks") or {}).values():
            for h in hooks if isinstance(hooks, list) else []:
                env = h.setdefault("env", [helpers.DEFAULT_PATH])
                if not any(e.startswith(MARKER_ENV + "=") for e in env):
                    env.append(f"{MARKER_ENV}={self.ctx.token}")
        linux = c.get("linux")
        if isinstance(linux, dict) and isinstance(linux.get("cgroupsPath"), str):
            self.ctx.cgroup_paths.add(linux["cgroupsPath"])
        write_json(self.path / "config.json", c)
        return self


class Ctx:
    """Everything one test uses: ids, bundles, the runtime's --root, cleanup."""

    _counter = itertools.count(1)

    def __init__(self, request, base, rootfs_dir, runtime):
        self.request = request
        self.runtime = str(runtime)
        self.token = f"it{os.getpid()}-{next(self._counter)}"
        self.dir = Path(tempfile.mkdtemp(prefix=self.token + ".", dir=base))
        os.chmod(self.dir, 0o755)
        self.root = self.dir / "state"
        self.rootfs_src = rootfs_dir
        self.ids = []
        self.cgroup_paths = set()
        self.procs = []
        self.cleanups = []  # callables run after the containers are gone
        self._nbundles = 0

    # ---- ids and bundles -------------------------------------------------
    def new_id(self):
        cid = self.token if not self.ids else f"{self.token}-{len(self.ids) + 1}"
        self.ids.append(cid)
        self.cgroup_paths.add("/" + cid)
        return cid

    def hostdir(self, name, mode=0o777):
        """A fresh host directory inside this test's scratch dir."""
        p = self.dir / name
        p.mkdir(parents=True, exist_ok=True)
        os.chmod(p, mode)
        return p

    def bundle(self, config=None, *, cid=None, out=False, owner=None, rootfs=True):
        """A bundle dir with a copy of the rootfs and (if config is given) config.json.

        cid: container id (default: a new one); linux.cgroupsPath defaults to
        "/<cid>". out: bind-mount a fresh world-writable host dir at /out
        (bundle.out). owner: (uid, gid) to chown the rootfs to (user namespaces)."""
        self._nbundles += 1
        path = self.dir / f"bundle{self._nbundles}"
        path.mkdir()
        if cid is None:
            cid = self.new_id()
        if rootfs:
            subprocess.run(["cp", "-a", str(self.rootfs_src), str(path / "rootfs")], check=True)
        b = Bundle(self, path, cid, config)
        if config is not None:
            linux = config.setdefault("linux", {})
            if isinstance(linux, dict) and "cgroupsPath" not in linux:
                linux["cgroupsPath"] = "/" + cid
            if out:
                b.out = self.hostdir(f"out{self._nbundles}")
                helpers.bind(config, b.out, "/out", "rbind", "rw")
        if owner is not None and rootfs:
            subprocess.run(["chown", "-R", "-h", f"{owner[0]}:{owner[1]}", str(b.rootfs)],
                           check=True)
        return b.write()

    # ---- running the runtime --------------------------------------------
    def argv(self, args, global_args=()):
        return [self.runtime, "--root", str(self.root), *map(str, global_args),
                *map(str, args)]

    def _env(self, env):
        e = dict(os.environ)
        e[MARKER_ENV] = self.token
        if env:
            e.update(env)
        return e

    def run(self, *args, global_args=(), timeout=COMMAND_TIMEOUT, env=None, stdin=None,
            pass_fds=(), preexec_fn=None, cwd=None):
        """Run `runtime --root STATE [global_args] args...` to completion.

        Output goes through files, not pipes, so that a detached container that
        inherits the runtime's stdout does not keep the call waiting."""
        p = self.popen(*args, global_args=global_args, env=env, stdin=stdin,
                       pass_fds=pass_fds, preexec_fn=preexec_fn, cwd=cwd)
        return p.result(timeout)

    def popen(self, *args, global_args=(), env=None, stdin=None, pass_fds=(),
              preexec_fn=None, cwd=None):
        """Start the runtime in the background; .result(timeout) collects it."""
        argv = self.argv(args, global_args)
        out = tempfile.TemporaryFile(dir=self.dir)
        err = tempfile.TemporaryFile(dir=self.dir)
        p = subprocess.Popen(argv, stdout=out, stderr=err,
                             stdin=subprocess.DEVNULL if stdin is None else stdin,
                             env=self._env(env), pass_fds=pass_fds, preexec_fn=preexec_fn,
                             cwd=cwd, start_new_session=True)
        self.procs.append(p)

        def result(timeout=COMMAND_TIMEOUT):
            try:
                rc = p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                _timeouts[0] += 1
                if _timeouts[0] >= MAX_TIMEOUTS:
                    pytest.exit(f"the runtime timed out {_timeouts[0]} times; stopping the "
                                "session (last: " + " ".join(argv) + ")", returncode=1)
                raise AssertionError(f"timed out after {timeout}s: {' '.join(argv)}") from None
            out.seek(0)
            err.seek(0)
            return Result(rc, out.read().decode(errors="replace"),
                          err.read().decode(errors="replace"), argv)

        p.result = result
        return p

    def run_container(self, config, *, cid=None, args=(), global_args=(), out=False,
                      timeout=COMMAND_TIMEOUT, owner=None):
        """Create a bundle for config and `run` it in the foreground: (rc, out, err)."""
        b = self.bundle(config, cid=cid, out=out, owner=owner)
        self.last_bundle = b
        return self.run("run", "--bundle", b.path, *args, b.id, global_args=global_args,
                        timeout=timeout)

    def create(self, b, *args, cid=None, **kw):
        return self.run("create", "--bundle", b.path, *args, cid or b.id, **kw)

    def state(self, cid):
        r = self.run("state", cid).ok()
        return json.loads(r.out)

    def wait_status(self, cid, status, timeout=10):
        last = {}

        def check():
            r = self.run("state", cid)
            if r.rc == 0:
                last["s"] = json.loads(r.out)
                return last["s"]["status"] == status and last["s"]
            last["s"] = str(r)
            return False
        try:
            return helpers.wait_for(check, timeout, f"container {cid} to be {status}")
        except AssertionError as e:
            raise AssertionError(f"{e}; last state: {last.get('s')}") from None

    def spawn(self, argv, **kw):
        """Start a helper process on the host, killed at teardown."""
        kw.setdefault("stdin", subprocess.DEVNULL)
        p = subprocess.Popen(argv, start_new_session=True, **kw)
        self.procs.append(p)
        return p

    # ---- teardown --------------------------------------------------------
    def leftovers(self):
        """Describe what is left on the host: state dirs, cgroups, processes, mounts."""
        problems = []
        for cid in self.ids:
            if (self.root / cid).exists():
                problems.append(f"state directory {self.root / cid}")
        for d in self.cgroup_dirs():
            problems.append(f"cgroup {d}")
        for pid in self.marked_pids():
            problems.append(f"process {pid} ({_cmdline(pid)})")
        for m in _mounts_under(self.dir):
            problems.append(f"host mount {m}")
        return problems

    def cgroup_dirs(self):
        found = []
        if not CGROUP_ROOT.is_dir():
            return found
        hierarchies = [CGROUP_ROOT] + [p for p in CGROUP_ROOT.iterdir() if p.is_dir()]
        for rel in self.cgroup_paths:
            rel = rel.strip("/")
            if not rel:
                continue
            for h in hierarchies:
                d = h / rel
                if d.is_dir() and (d / "cgroup.procs").exists():
                    found.append(d)
        return found

    def marked_pids(self):
        needle = f"{MARKER_ENV}={self.token}".encode()
        pids = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                with open(f"/proc/{entry}/environ", "rb") as f:
                    env = f.read().split(b"\0")
            except OSError:
                continue
            if needle in env:
                pids.append(int(entry))
        return pids

    def force_clean(self):
        """Remove leftovers without the runtime's help (after a failed test)."""
        for _ in range(50):
            pids = self.marked_pids()
            for d in self.cgroup_dirs():
                try:
                    pids += [int(x) for x in (d / "cgroup.procs").read_text().split()]
                except OSError:
                    pass
            if not pids:
                break
            for pid in set(pids):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.05)
        for d in sorted(self.cgroup_dirs(), key=lambda p: -len(p.parts)):
            for sub in sorted((p for p in d.rglob("*") if p.is_dir()),
                              key=lambda p: -len(p.parts)):
                _rmdir(sub)
            _rmdir(d)
        for m in sorted(_mounts_under(self.dir), key=len, reverse=True):
            subprocess.run(["umount", "-l", m], stderr=subprocess.DEVNULL)

    def teardown(self):
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except OSError:
                    pass
                p.wait()
        ids = list(self.ids)
        if self.root.is_dir():
            r = self.run("list", "-q")
            if r.rc == 0:
                ids += [i for i in r.out.split() if i not in ids]
        for cid in ids:
            self.run("delete", "--force", cid)
        for fn in reversed(self.cleanups):
            fn()
        problems = self.leftovers()
        self.force_clean()
        if not _mounts_under(self.dir):
            shutil.rmtree(self.dir, ignore_errors=True)
        return problems


def _rmdir(p):
    try:
        os.rmdir(p)
    except OSError:
        pass


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def _mounts_under(path):
    prefix = str(path).rstrip("/") + "/"
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = helpers.unescape(line.split()[4])
            if mp.startswith(prefix) or mp == prefix.rstrip("/"):
                out.append(mp)
    return out


@pytest.fixture
def ctx(request, scratch_base, rootfs, runtime_bin):
    c = Ctx(request, scratch_base, rootfs, runtime_bin)
    yield c
    problems = c.teardown()
    rep = getattr(request.node, "rep_call", None)
    if problems and rep is not None and rep.passed:
        pytest.fail("left behind after the test: " + "; ".join(problems), pytrace=False)


@pytest.fixture
def run(ctx):
    """run(*runtime_args) -> (rc, out, err), with this test's --root."""
    return ctx.run


@pytest.fixture
def bundle(ctx):
    """bundle(config=None, cid=None, out=False, owner=None) -> Bundle."""
    return ctx.bundle


@pytest.fixture
def cid(ctx):
    """A container id unique to this test."""
    return ctx.new_id()


@pytest.fixture
def state_root(ctx):
    return ctx.root


@pytest.fixture
def run_container(ctx):
    """run_container(config, ...) -> (rc, out, err) of `run` in the foreground."""
    return ctx.run_container
