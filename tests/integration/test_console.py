"""process.terminal with --console-socket: the runtime sends the pty master
over the socket (SCM_RIGHTS) and the container's stdio is the pty slave."""

import os

import pytest

from helpers import ConsoleListener, sh


def _terminal_config(script, size=None):
    config = sh(script)
    config["process"]["terminal"] = True
    if size:
        config["process"]["consoleSize"] = {"height": size[0], "width": size[1]}
    return config


@pytest.fixture
def console(ctx):
    listeners = []

    def make():
        path = ctx.dir / f"console{len(listeners)}.sock"
        listener = ConsoleListener(path)
        listeners.append(listener)
        return listener
    yield make
    for listener in listeners:
        listener.close()


def test_console_socket_receives_pty(ctx, bundle, console):
    listener = console()
    b = bundle(_terminal_config(
        "stty size; tty; test -t 0 && test -t 1 && test -t 2 && echo all-tty; echo done",
        size=(30, 100)))
    ctx.create(b, "--console-socket", listener.path).ok()
    assert listener.got_master.wait(10), "no pty master received"
    assert listener.master is not None
    ctx.run("start", b.id).ok()
    out = listener.wait()
    lines = [line.strip() for line in out.splitlines()]
    assert lines[0] == "30 100", out
    assert lines[1].startswith("/dev/pts/"), out
    assert "all-tty" in lines
    assert lines[-1] == "done"
    ctx.wait_status(b.id, "stopped")


def test_console_input_reaches_container(ctx, bundle, console):
    listener = console()
    b = bundle(_terminal_config("read line; echo got:$line"))
    ctx.create(b, "--console-socket", listener.path).ok()
    assert listener.got_master.wait(10)
    ctx.run("start", b.id).ok()
    listener.write(b"hello\n")
    out = listener.wait()
    assert "got:hello" in out


def test_dev_console_with_terminal(ctx, bundle, console):
    listener = console()
    b = bundle(_terminal_config("stat -c '%F' /dev/console; echo hi > /dev/console"))
    ctx.create(b, "--console-socket", listener.path).ok()
    assert listener.got_master.wait(10)
    ctx.run("start", b.id).ok()
    out = listener.wait()
    assert out.splitlines()[0].strip() == "character special file"
    assert "hi" in out


def test_run_detach_with_console_socket(ctx, bundle, console):
    listener = console()
    b = bundle(_terminal_config("echo detached-tty"))
    ctx.run("run", "--detach", "--console-socket", listener.path, "--bundle", b.path,
            b.id).ok()
    assert "detached-tty" in listener.wait()


def test_terminal_without_console_socket_fails(ctx, bundle):
    b = bundle(_terminal_config("true"))
    r = ctx.create(b)
    assert r.rc != 0
    assert r.err.strip() != ""
    assert not (ctx.root / b.id).exists()


def test_console_socket_not_listening_fails(ctx, bundle):
    b = bundle(_terminal_config("true"))
    r = ctx.create(b, "--console-socket", ctx.dir / "nobody-listens.sock")
    assert r.rc != 0
    assert not (ctx.root / b.id).exists()
