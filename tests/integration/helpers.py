"""Helpers shared by the integration tests: the default config.json, the
console-socket listener, hook scripts and small parsers for what a container
prints. Nothing here starts a container by itself; see conftest.py."""

import array
import copy
import json
import os
import socket
import stat
import threading
import time

# Every container process and hook gets this variable, set to the container id,
# so that teardown can find (and kill) anything a test left running.
MARKER_ENV = "ISOLA_IT_ID"

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

DEFAULT_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]

# Capability numbers from linux/capability.h, for decoding /proc/PID/status.
CAP_NUMBERS = {
    "CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_DAC_READ_SEARCH": 2, "CAP_FOWNER": 3,
    "CAP_FSETID": 4, "CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8,
    "CAP_LINUX_IMMUTABLE": 9, "CAP_NET_BIND_SERVICE": 10, "CAP_NET_BROADCAST": 11,
    "CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13, "CAP_IPC_LOCK": 14, "CAP_IPC_OWNER": 15,
    "CAP_SYS_MODULE": 16, "CAP_SYS_RAWIO": 17, "CAP_SYS_CHROOT": 18, "CAP_SYS_PTRACE": 19,
    "CAP_SYS_PACCT": 20, "CAP_SYS_ADMIN": 21, "CAP_SYS_BOOT": 22, "CAP_SYS_NICE": 23,
    "CAP_SYS_RESOURCE": 24, "CAP_SYS_TIME": 25, "CAP_SYS_TTY_CONFIG": 26, "CAP_MKNOD": 27,
    "CAP_LEASE": 28, "CAP_AUDIT_WRITE": 29, "CAP_AUDIT_CONTROL": 30, "CAP_SETFCAP": 31,
    "CAP_MAC_OVERRIDE": 32, "CAP_MAC_ADMIN": 33, "CAP_SYSLOG": 34, "CAP_WAKE_ALARM": 35,
    "CAP_BLOCK_SUSPEND": 36, "CAP_AUDIT_READ": 37, "CAP_PERFMON": 38, "CAP_BPF": 39,
    "CAP_CHECKPOINT_RESTORE": 40,
}


def default_config(args=None, **process):
    """A config.json equivalent to `runc spec` (terminal false), as a dict.

    `args` replaces process.args; other keyword arguments replace fields of
    `process` (e.g. cwd="/tmp"). Tests edit the returned dict freely."""
    caps = list(DEFAULT_CAPS)
    config = {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": [DEFAULT_PATH, "TERM=xterm"],
            "cwd": "/",
            "capabilities": {
                "bounding": caps[:], "effective": caps[:], "permitted": caps[:],
                "ambient": caps[:],
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "isola",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620",
                         "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
        ],
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
            ],
        },
    }
    if args is not None:
        config["process"]["args"] = list(args)
    config["process"].update(copy.deepcopy(process))
    return config


def sh(script, **process):
    """default_config() running `/bin/sh -c script`."""
    return default_config(["/bin/sh", "-c", script], **process)


def set_namespaces(config, *types, **paths):
    """Replace linux.namespaces: new namespaces by type, joined ones as type=path."""
    ns = [{"type": t} for t in types]
    ns += [{"type": t, "path": p} for t, p in paths.items()]
    config["linux"]["namespaces"] = ns
    return config


def drop_namespace(config, ns_type):
    config["linux"]["namespaces"] = [
        n for n in config["linux"]["namespaces"] if n["type"] != ns_type]
    return config


def add_mount(config, destination, type_=None, source=None, options=None):
    m = {"destination": destination}
    if type_ is not None:
        m["type"] = type_
    if source is not None:
        m["source"] = str(source)
    if options is not None:
        m["options"] = list(options)
    config["mounts"].append(m)
    return m


def bind(config, source, destination, *options):
    """Add a bind mount of a host path (options default to ["bind"])."""
    return add_mount(config, destination, "bind", source, list(options) or ["bind"])


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)


def write_script(path, text, mode=0o755):
    """Write an executable script (text gets a #!/bin/sh line if it has none)."""
    if not text.startswith("#!"):
        text = "#!/bin/sh\n" + text
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return str(path)


def wait_for(predicate, timeout=10.0, what="condition", interval=0.02):
    """Poll predicate() until it returns a true value; fail after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def wait_file(path, timeout=10.0):
    """Wait until a file exists and is non-empty; return its text."""
    def ready():
        try:
            if os.path.getsize(path) > 0:
                with open(path) as f:
                    return f.read()
        except FileNotFoundError:
            return None
        return None
    return wait_for(ready, timeout, f"{path} to be written")


def proc_status(text):
    """Parse /proc/PID/status text into a dict of field -> value string."""
    out = {}
    for line in text.splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            out[k.strip()] = v.strip()
    return out


def cap_mask(names):
    mask = 0
    for n in names:
        mask |= 1 << CAP_NUMBERS[n]
    return mask


def parse_mountinfo(text):
    """Parse /proc/PID/mountinfo into dicts: mountpoint, root, fstype, source,
    mount_opts (set), super_opts (set), optional (list of tagged fields).
    Lines that are not mountinfo lines (other output of the container) are skipped."""
    mounts = []
    for line in text.splitlines():
        if " - " not in line or not line.split(" ", 1)[0].isdigit():
            continue
        left, right = line.split(" - ", 1)
        lf = left.split()
        rf = right.split()
        mounts.append({
            "id": int(lf[0]), "parent": int(lf[1]), "devno": lf[2],
            "root": unescape(lf[3]), "mountpoint": unescape(lf[4]),
            "mount_opts": set(lf[5].split(",")), "optional": lf[6:],
            "fstype": rf[0], "source": rf[1] if len(rf) > 1 else "",
            "super_opts": set(rf[2].split(",")) if len(rf) > 2 else set(),
        })
    return mounts


def unescape(s):
    return s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n") \
            .replace("\\134", "\\")


def find_mount(mounts, mountpoint):
    """The topmost mount at mountpoint (the last one listed), or None."""
    found = None
    for m in mounts:
        if m["mountpoint"] == mountpoint:
            found = m
    return found


def is_shared(m):
    return any(o.startswith("shared:") for o in m["optional"])


def is_slave(m):
    return any(o.startswith("master:") for o in m["optional"])


def is_unbindable(m):
    return "unbindable" in m["optional"]


def is_private(m):
    return not (is_shared(m) or is_slave(m) or is_unbindable(m))


def ns_id(pid, ns):
    """The namespace identity 'net:[4026531840]' of a process."""
    return os.readlink(f"/proc/{pid}/ns/{ns}")


def dev_info(path):
    st = os.stat(path)
    return stat.S_ISCHR(st.st_mode), os.major(st.st_rdev), os.minor(st.st_rdev)


class ConsoleListener:
    """A --console-socket endpoint: accepts one connection, receives the pty
    master through SCM_RIGHTS and collects everything read from it."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(1)
        self.sock.settimeout(30)
        self.master = None
        self.output = bytearray()
        self.error = None
        self.got_master = threading.Event()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        try:
            conn, _ = self.sock.accept()
            with conn:
                fds = array.array("i")
                msg, anc, _flags, _addr = conn.recvmsg(
                    4096, socket.CMSG_SPACE(4 * fds.itemsize))
                for level, type_, data in anc:
                    if level == socket.SOL_SOCKET and type_ == socket.SCM_RIGHTS:
                        fds.frombytes(data[:len(data) - (len(data) % fds.itemsize)])
                if not fds:
                    raise RuntimeError("no file descriptor received on the console socket")
                self.master = fds[0]
                for extra in fds[1:]:
                    os.close(extra)
            self.got_master.set()
            while True:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:  # EIO once the last slave fd is closed
                    break
                if not chunk:
                    break
                self.output += chunk
        except Exception as e:  # reported by wait()
            self.error = e
        finally:
            self.got_master.set()
            self.done.set()

    def write(self, data):
        os.write(self.master, data)

    def wait(self, timeout=30):
        """Wait until the pty is closed (the container exited); return its text."""
        if not self.done.wait(timeout):
            raise AssertionError("console output did not end in time")
        if self.error:
            raise self.error
        return self.output.decode(errors="replace").replace("\r\n", "\n")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
        if self.master is not None and self.done.is_set():
            try:
                os.close(self.master)
            except OSError:
                pass
            self.master = None


def hook(path, *args, env=None, timeout=None):
    """One hook entry for config["hooks"][<name>] (args[0] is the path)."""
    h = {"path": str(path), "args": [str(path), *map(str, args)]}
    if env is not None:
        h["env"] = list(env)
    if timeout is not None:
        h["timeout"] = timeout
    return h
