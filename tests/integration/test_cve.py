"""Known runtime escapes, replayed: none may reach the host."""

import os

import pytest

from helpers import sh


@pytest.mark.parametrize("fd", range(3, 9))
def test_cwd_through_leaked_fd_is_refused(ctx, run_container, fd):
    """CVE-2024-21626: a process.cwd of /proc/self/fd/N must not leave the
    process with a working directory on the host."""
    marker = f"host-only-{ctx.token}"
    (ctx.dir / marker).write_text("")
    config = sh("pwd; ls -a . ..", cwd=f"/proc/self/fd/{fd}")
    rc, out, err = run_container(config)
    assert marker not in out
    assert "cgroup.procs" not in out, out  # runc < 1.1.12 leaked a host cgroup dir fd
    if rc == 0:
        assert not out.startswith("(unreachable)"), out
