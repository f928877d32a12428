"""Helpers for the tests that drive isola-oci through container engines
(podman, buildah, containerd) and as an unprivileged user: running a client
and reporting what it and isola-oci said on failure, a private podman/buildah
configuration (storage, network, runtime) under one temp directory, a
terminal driver for `-it`, and host-side cgroup lookups. Everything here
removes what it created."""

import io
import json
import os
import pty
import select
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

import pytest

CGROUP_ROOT = Path("/sys/fs/cgroup")
ISOLA_STATE = Path("/run/isola-oci")  # isola-oci's default --root (podman passes none)


def need(binary, package):
    """Skip (with the reason) when a client binary is not installed."""
    path = shutil.which(binary, path=os.environ.get("PATH", "") + ":/usr/sbin:/usr/bin:/sbin:/bin")
    if not path:
        pytest.skip(f"{binary} is not installed (Debian package {package}; "
                    "scripts/install-deps.sh installs it)")
    return path


class Out(tuple):
    """(rc, out, err) of one client command, printable with its argv."""

    def __new__(cls, rc, out, err, argv, extra=""):
        self = super().__new__(cls, (rc, out, err))
        self.argv, self.extra = argv, extra
        return self

    rc = property(lambda self: self[0])
    out = property(lambda self: self[1])
    err = property(lambda self: self[2])

    def __str__(self):
        text = (f"$ {' '.join(map(str, self.argv))}\nexit {self.rc}\n"
                f"--- stdout\n{self.out}--- stderr\n{self.err}")
        return text + (f"\n{self.extra}" if self.extra else "")


def tail(path, lines=40):
    try:
        text = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


def run(argv, *, env=None, timeout=60, input=None, diag=None, user=None, cwd=None):
    """Run argv to completion; diag() returns extra text (logs) for a failure report.
    user=(uid, gid): run as that user (its groups: just gid)."""
    argv = [str(a) for a in argv]
    pre = None
    if user is not None:
        uid, gid = user

        def pre():
            os.setgroups([gid])
            os.setgid(gid)
            os.setuid(uid)
    # Output goes through files, not pipes: a detached container (or conmon)
    # that inherits them must not keep the call waiting for EOF.
    with tempfile.TemporaryFile() as fo, tempfile.TemporaryFile() as fe:
        p = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE if input is not None else
                             subprocess.DEVNULL, stdout=fo, stderr=fe, preexec_fn=pre, cwd=cwd,
                             start_new_session=True)
        try:
            if input is not None:
                p.stdin.write(input.encode())
                p.stdin.close()
            rc = p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            rc = None
        fo.seek(0)
        fe.seek(0)
        out, err = fo.read().decode(errors="replace"), fe.read().decode(errors="replace")
    if rc is None:
        raise AssertionError(str(Out(-1, out, err + f"\n(timed out after {timeout}s)", argv,
                                     diag() if diag else "")))
    return Out(rc, out, err, argv, diag() if diag and rc else "")


def ok(res):
    assert res.rc == 0, str(res)
    return res


def run_pty(argv, script, *, env=None, timeout=30, prompt=b"# "):
    """Run argv on a new terminal, type `script` once the prompt shows, and
    return (exit code, everything the terminal showed)."""
    pid, fd = pty.fork()
    if pid == 0:  # child: exec the client on the terminal
        try:
            os.execvpe(argv[0], [str(a) for a in argv], env or os.environ)
        finally:
            os._exit(127)
    buf = b""
    sent = False
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            r, _, _ = select.select([fd], [], [], 0.2)
            if r:
                try:
                    data = os.read(fd, 4096)
                except OSError:  # EIO: the terminal's other side is gone
                    break
                if not data:
                    break
                buf += data
            if not sent and prompt in buf:
                os.write(fd, script.encode())
                sent = True
        else:
            os.kill(pid, signal.SIGKILL)
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), buf.decode(errors="replace")


def rootfs_tar(rootfs, dest, extra_dirs=(), extra_files=()):
    """A tarball of the busybox rootfs (for `podman import`), plus directories
    and (path, text) files."""
    with tarfile.open(dest, "w") as t:
        t.add(str(rootfs), arcname=".")
        for d in extra_dirs:
            info = tarfile.TarInfo(d.lstrip("/"))
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, int(time.time())
            t.addfile(info)
        for path, text in extra_files:
            data = text.encode()
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
            t.addfile(info, io.BytesIO(data))
    return dest


def cgroup_dir(pid, controller):
    """Host directory of pid's cgroup for a v1 controller, or its cgroup2
    directory when that controller is not mounted as v1."""
    v1 = v2 = None
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        num, ctrls, path = line.split(":", 2)
        if num == "0" and not ctrls:
            v2 = path
        elif controller in ctrls.split(","):
            v1 = (ctrls, path)
    if v1:
        for name in (v1[0], controller):
            d = CGROUP_ROOT / name / v1[1].lstrip("/")
            if d.is_dir():
                return d, False
    if v2 is not None:
        for base in (CGROUP_ROOT / "unified", CGROUP_ROOT):
            if (base / "cgroup.controllers").exists():
                return base / v2.lstrip("/"), True
    raise AssertionError(f"no cgroup directory for {controller} of pid {pid}")


def cgroup_value(pid, controller, v1_file, v2_file):
    d, is_v2 = cgroup_dir(pid, controller)
    return (d / (v2_file if is_v2 else v1_file)).read_text().strip()


def cgroups_named(name):
    """Cgroup directories called `name` anywhere under the usual parents."""
    found = []
    for h in [CGROUP_ROOT] + [p for p in CGROUP_ROOT.iterdir() if p.is_dir()]:
        for parent in (h, h / "libpod_parent"):
            d = parent / name
            if d.is_dir():
                found.append(d)
    return found


def mounts_under(path):
    prefix = str(path).rstrip("/") + "/"
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].replace("\\040", " ")
            if mp.startswith(prefix):
                out.append(mp)
    return out


def pids_with_arg(text):
    """Processes whose command line mentions text (conmon, shims, containers)."""
    found = []
    needle = text.encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if needle in f.read():
                    found.append(int(entry))
        except OSError:
            pass
    return found


def kill_and_unmount(base):
    """Last resort after a failure: kill what still runs from base, unmount it."""
    for pid in pids_with_arg(str(base)):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    for m in sorted(mounts_under(base), key=len, reverse=True):
        subprocess.run(["umount", "-l", m], stderr=subprocess.DEVNULL)


class Engine:
    """A private podman/buildah setup: containers.conf and storage.conf in a
    temp directory (CONTAINERS_CONF / CONTAINERS_STORAGE_CONF), overlay (or
    vfs) storage, cgroupfs, file events, no systemd, a CNI bridge network of its
    own, and isola-oci as the runtime (`--runtime PATH` on every command,
    `--runtime-flag log=...` for its error log)."""

    # podman's documented default set, written out: tests compare against it.
    CAPS = ["CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "NET_BIND_SERVICE", "SETFCAP",
            "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"]

    def __init__(self, runtime):
        self.runtime = str(runtime)
        self.dir = Path(tempfile.mkdtemp(prefix="isola-engine.", dir="/tmp"))
        os.chmod(self.dir, 0o755)
        self.log = self.dir / "isola-oci.log"
        # Per test session, so that two sessions on one host do not collide.
        self.network = f"isolait{os.getpid()}"
        self.bridge = f"isoit{os.getpid() % 10**9}"[:15]
        self.subnet = f"10.213.{os.getpid() % 250 + 2}"
        self.image = "localhost/isola-busybox"
        self.ip_forward = Path("/proc/sys/net/ipv4/ip_forward").read_text()
        self.env = dict(os.environ)
        self.env.update(CONTAINERS_CONF=str(self.dir / "containers.conf"),
                        CONTAINERS_STORAGE_CONF=str(self.dir / "storage.conf"),
                        PATH=os.environ.get("PATH", "") + ":/usr/sbin:/usr/bin:/sbin:/bin")
        self.env.pop("XDG_RUNTIME_DIR", None)

    def setup(self, rootfs, auto_userns_user=None):
        """Write the configuration and import the image (close() undoes it,
        also after a failure here)."""
        d = self.dir
        (d / "cni").mkdir()
        (d / "tmp").mkdir()
        (d / "cni" / f"{self.network}.conflist").write_text(json.dumps({
            "cniVersion": "0.4.0", "name": self.network,
            "plugins": [{
                "type": "bridge", "bridge": self.bridge, "isGateway": True, "ipMasq": False,
                "ipam": {"type": "host-local", "dataDir": str(d / "ipam"),
                         "routes": [{"dst": "0.0.0.0/0"}],
                         "ranges": [[{"subnet": f"{self.subnet}.0/24",
                                      "gateway": f"{self.subnet}.1"}]]},
            }],
        }))
        caps = ", ".join(f'"{c}"' for c in self.CAPS)
        (d / "containers.conf").write_text(f"""\
[containers]
# Raising the nproc hard limit is refused on hosts without CAP_SYS_RESOURCE in
# the bounding set: ask for limits at or below the usual ones.
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
default_capabilities = [{caps}]

[network]
network_backend = "cni"
network_config_dir = "{d}/cni"
default_network = "{self.network}"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{d}/events.log"
tmp_dir = "{d}/tmp"
volume_path = "{d}/volumes"
runtime = "isola"

[engine.runtimes]
isola = ["{self.runtime}"]
""")
        auto = ""
        if auto_userns_user:
            auto = (f'\n[storage.options]\nroot-auto-userns-user = "{auto_userns_user}"\n'
                    'auto-userns-min-size = 1024\n')
        # overlay cannot stack on overlayfs (a CI container's /tmp): vfs copies instead.
        fstype = subprocess.run(["stat", "-f", "-c", "%T", str(d)], capture_output=True,
                                text=True).stdout.strip()
        driver = "vfs" if fstype == "overlayfs" else "overlay"
        (d / "storage.conf").write_text(f"""\
[storage]
driver = "{driver}"
graphroot = "{d}/root"
runroot = "{d}/runroot"
{auto}""")
        tar = rootfs_tar(rootfs, d / "rootfs.tar", extra_dirs=["/run/isola-it"],
                         extra_files=[("/run/isola-it/marker", "from-the-image\n")])
        ok(self.podman("import", tar, self.image))
        tar.unlink()
        return self

    def diag(self):
        text = tail(self.log)
        return f"--- isola-oci log ({self.log})\n{text}" if text else "--- isola-oci log: empty"

    def podman(self, *args, timeout=60, input=None):
        argv = ["podman", "--runtime", self.runtime, "--runtime-flag", f"log={self.log}", *args]
        return run(argv, env=self.env, timeout=timeout, input=input, diag=self.diag)

    def buildah(self, *args, timeout=120):
        argv = ["buildah", *args]
        return run(argv, env=self.env, timeout=timeout, diag=self.diag)

    def close(self):
        """Remove every container, image and mount, the bridge, the temp dir;
        return what could not be removed."""
        problems = []
        ids = []
        # Without our storage.conf podman would act on the host's own storage.
        if (self.dir / "storage.conf").exists() and (self.dir / "containers.conf").exists():
            ids = self.podman("ps", "-aq", "--no-trunc").out.split()
            self.podman("rm", "-af", "-t", "0", timeout=120)
            self.podman("rmi", "-af", timeout=120)
        for cid in ids:
            if (ISOLA_STATE / cid).exists():
                problems.append(f"isola-oci state {ISOLA_STATE / cid}")
            for d in cgroups_named(f"libpod-{cid}"):
                problems.append(f"cgroup {d}")
        if pids_with_arg(str(self.dir)):
            problems.append(f"processes {pids_with_arg(str(self.dir))}")
        kill_and_unmount(self.dir)
        subprocess.run(["ip", "link", "del", self.bridge], stderr=subprocess.DEVNULL)
        try:
            Path("/proc/sys/net/ipv4/ip_forward").write_text(self.ip_forward)
        except OSError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)
        return problems
