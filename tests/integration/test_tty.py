"""`run` and `exec -t` in the foreground with a terminal and no console socket:
the runtime owns the pty pair, copies the terminal both ways and passes on
the window size."""

import fcntl
import os
import pty
import select
import struct
import subprocess
import termios

from helpers import default_config, sh


def on_pty(argv, rows=31, cols=97, send=None, timeout=15):
    """Run argv with a pty as stdin/stdout/stderr; return what it printed."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    p = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    out = b""
    if send:
        os.write(master, send)
    while True:
        r, _, _ = select.select([master], [], [], timeout)
        if not r:
            p.kill()
            break
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    rc = p.wait(timeout)
    os.close(master)
    return rc, out.decode(errors="replace")


def test_run_with_terminal_in_foreground(ctx, bundle):
    config = sh("tty; stty size; exit 3")
    config["process"]["terminal"] = True
    b = bundle(config)
    rc, out = on_pty(ctx.argv(["run", "--bundle", str(b.path), b.id]))
    assert rc == 3, out
    assert "/dev/pts/0" in out
    assert "31 97" in out


def test_exec_tty_in_foreground(ctx, bundle):
    b = bundle(default_config(["sleep", "1000"]))
    ctx.create(b).ok()
    ctx.run("start", b.id).ok()
    rc, out = on_pty(ctx.argv(["exec", "-t", b.id, "sh", "-c", "tty; stty size; read x; echo got=$x"]),
                     rows=12, cols=40, send=b"hello\r")
    assert rc == 0, out
    assert "/dev/pts/" in out
    assert "12 40" in out
    assert "got=hello" in out
