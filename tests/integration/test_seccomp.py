"""linux.seccomp through the runtime: what a process in the container sees
when the filter allows, fails, kills or hands a syscall to a listener."""

import array
import errno
import fcntl
import json
import os
import socket
import struct
import threading
from pathlib import Path

import pytest

from helpers import sh

DATA = Path(__file__).resolve().parents[1] / "data"

SECCOMP_IOCTL_NOTIF_RECV = 0xC0502100
SECCOMP_IOCTL_NOTIF_SEND = 0xC0182101


def with_seccomp(config, seccomp):
    config["linux"]["seccomp"] = seccomp
    return config


def test_errno_rule_fails_syscall_with_chosen_errno(run_container):
    config = with_seccomp(sh("mkdir /tmp/x; echo rc=$?; ls -d /tmp/x"), {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                      "errnoRet": errno.EXDEV}]})
    rc, out, err = run_container(config)
    assert "rc=1" in out
    assert "Invalid cross-device link" in err or "cross-device" in err, err


def test_default_errno_with_allow_list(run_container):
    """A Docker-style profile (default ERRNO, ~350 allowed syscalls): ordinary
    programs run, unshare is refused."""
    profile = json.loads((DATA / "seccomp-default.json").read_text())
    config = with_seccomp(sh("echo hello; unshare -U true; echo unshare=$?"), profile)
    rc, out, err = run_container(config)
    assert rc == 0, err
    assert "hello" in out
    assert "unshare=1" in out


def test_kill_action_kills_process(run_container):
    config = with_seccomp(sh("exec mkdir /tmp/x"), {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL_PROCESS"}]})
    rc, out, err = run_container(config)
    assert rc == 128 + 31, (rc, err)  # SIGSYS


def test_argument_rule(run_container):
    """personality(0xffffffff) (a query) is allowed, any other value refused:
    linux64 sets PER_LINUX and fails; without the rule it succeeds."""
    rc, out, err = run_container(sh("linux64 true; echo rc=$?"))
    assert "rc=0" in out, (out, err)
    config = with_seccomp(sh("linux64 true; echo rc=$?"), {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                      "args": [{"index": 0, "value": 0xffffffff, "op": "SCMP_CMP_NE"}]}]})
    rc, out, err = run_container(config)
    assert "rc=1" in out, (out, err)


def test_unknown_syscall_names_are_skipped(run_container):
    config = with_seccomp(sh("echo fine"), {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["no_such_syscall_xyz", "mkdir"], "action": "SCMP_ACT_ERRNO"}]})
    rc, out, err = run_container(config)
    assert rc == 0, err
    assert "fine" in out


def test_invalid_action_is_an_error(ctx, bundle):
    b = bundle(with_seccomp(sh("true"), {"defaultAction": "SCMP_ACT_BOGUS"}))
    r = ctx.create(b)
    assert r.rc != 0
    assert "linux.seccomp.defaultAction" in r.err or "SCMP_ACT_BOGUS" in r.err


class Listener:
    """A seccomp agent: receives the container state and the notify fd,
    answers every notification with EXDEV."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(1)
        self.state = None
        self.handled = 0
        self.error = None
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        try:
            conn, _ = self.sock.accept()
            msg, fds, _, _ = socket.recv_fds(conn, 65536, 4)
            conn.close()
            self.state = json.loads(msg.decode())
            fd = fds[0]
            while True:
                req = bytearray(80)
                try:
                    fcntl.ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, req)
                except OSError:
                    break  # the container is gone
                nid = struct.unpack_from("Q", req, 0)[0]
                resp = bytearray(struct.pack("QqiI", nid, 0, -errno.EXDEV, 0))
                try:
                    fcntl.ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, resp)
                    self.handled += 1
                except OSError:
                    pass
        except Exception as e:  # reported by the test
            self.error = e

    def close(self):
        self.sock.close()


def test_notify_listener_receives_fd_and_answers(ctx, run_container):
    path = ctx.dir / "agent.sock"
    agent = Listener(path)
    try:
        config = with_seccomp(sh("mkdir /tmp/x; echo rc=$?"), {
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": str(path),
            "listenerMetadata": "meta-42",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]})
        rc, out, err = run_container(config)
        agent.thread.join(10)
        assert agent.error is None, agent.error
        assert agent.state is not None, "the listener got nothing"
        assert agent.state["fds"] == ["seccompFd"]
        assert agent.state["metadata"] == "meta-42"
        assert agent.state["state"]["id"] == ctx.last_bundle.id
        assert agent.state["pid"] > 0
        assert agent.handled >= 1
        assert "rc=1" in out
        assert "cross-device" in err, err
    finally:
        agent.close()


@pytest.mark.isola_only
def test_unknown_syscall_name_is_logged_with_debug(ctx, bundle):
    config = with_seccomp(sh("echo fine"), {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["no_such_syscall_abc"], "action": "SCMP_ACT_ERRNO"}]})
    b = bundle(config)
    r = ctx.run("run", "--bundle", b.path, b.id, global_args=("--debug",))
    assert r.rc == 0, str(r)
    assert 'unknown syscall "no_such_syscall_abc" skipped' in r.err
