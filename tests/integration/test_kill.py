"""kill right after start: a container's shell that traps the signal gets it,
even when the signal is sent before the shell reached its trap (PID 1 of a pid
namespace would otherwise drop it)."""

import pytest

from helpers import sh


@pytest.mark.parametrize("sig", ["TERM", "USR1", "USR2"])
def test_signal_right_after_start_reaches_trap(ctx, bundle, sig):
    config = sh(f"trap 'touch /out/{sig}; exit 0' {sig}; sleep 10 & wait $!")
    b = bundle(config, out=True)
    for attempt in range(3):
        cid = f"{b.id}-{attempt}"
        ctx.run("create", "--bundle", b.path, cid).ok()
        ctx.run("start", cid).ok()
        ctx.run("kill", cid, sig).ok()
        ctx.wait_status(cid, "stopped", timeout=8)
        assert (b.out / sig).exists()
        (b.out / sig).unlink()
        ctx.run("delete", cid).ok()
