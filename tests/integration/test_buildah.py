"""buildah with isola-oci as its OCI runtime (`buildah --runtime PATH`): the
RUN steps of a Containerfile and `buildah run` execute as isola-oci
containers. isola-oci gets a private --root (`--runtime-flag root=...`):
its seccomp cache there shows it ran the steps, and no container state may
remain once buildah is done. The base image is the busybox rootfs imported
with podman (clients.Engine)."""

import json
import os
import shutil

import pytest

from clients import Engine, need, ok


@pytest.fixture(scope="module")
def engine(runtime_bin, rootfs):
    need("buildah", "buildah")
    need("podman", "podman")  # imports the base image from the rootfs tarball
    e = Engine(runtime_bin)
    try:
        yield e.setup(rootfs)
    finally:
        problems = e.close()
    assert not problems, "left behind: " + "; ".join(problems)


@pytest.fixture
def bstate(engine, request):
    """isola-oci's --root for this test's buildah commands."""
    d = engine.dir / f"state-{request.node.name}"
    yield d
    left = [p.name for p in d.iterdir() if not p.name.startswith(".")] if d.is_dir() else []
    shutil.rmtree(d, ignore_errors=True)
    assert not left, f"isola-oci containers left in {d}: {left}"


def runtime_args(engine, state):
    return ["--runtime", engine.runtime, "--runtime-flag", f"root={state}",
            "--runtime-flag", f"log={engine.log}"]


def ran_isola(state, runtime_name):
    """isola-oci caches compiled seccomp filters under its --root (other
    runtimes under test leave no such trace: then only the result counts)."""
    if runtime_name != "isola":
        return True
    cache = state / ".cache" / "seccomp"
    return cache.is_dir() and any(cache.iterdir())


CONTAINERFILE = """\
FROM localhost/isola-busybox
ENV GREETING=hello
WORKDIR /work
RUN echo "$GREETING from step 1" > step1 && id -u > uid
RUN test -f /work/step1 && cat /work/step1 > step2 && grep Seccomp: /proc/self/status >> step2
USER 1000:1000
RUN id -u > /tmp/uid-as-user
USER 0
RUN cp /tmp/uid-as-user /work/uid-as-user
"""


def test_build_runs_steps_under_isola(engine, bstate, runtime_name):
    ctx = engine.dir / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Containerfile").write_text(CONTAINERFILE)
    tag = f"localhost/isola-built-{os.getpid()}"
    r = ok(engine.buildah("bud", *runtime_args(engine, bstate), "--layers=false", "-t", tag,
                          "-f", ctx / "Containerfile", ctx))
    assert ran_isola(bstate, runtime_name), f"no isola-oci seccomp cache in {bstate}:\n{r}"
    out = ok(engine.podman("run", "--rm", tag, "sh", "-c",
                           "cat /work/step2 /work/uid /work/uid-as-user")).out.splitlines()
    assert out[0] == "hello from step 1", out
    assert out[1].split() == ["Seccomp:", "2"], out
    assert out[2:] == ["0", "1000"], out


def test_build_failing_step_reports_exit_code(engine, bstate):
    ctx = engine.dir / "ctx-fail"
    ctx.mkdir(exist_ok=True)
    (ctx / "Containerfile").write_text(
        "FROM localhost/isola-busybox\nRUN echo about-to-fail; exit 7\nRUN echo never\n")
    r = engine.buildah("bud", *runtime_args(engine, bstate), "-t", "isola-fail", ctx)
    assert r.rc != 0, str(r)
    assert "about-to-fail" in r.out + r.err and "never" not in r.out, str(r)
    assert "exit status 7" in r.err, str(r)


def test_buildah_run_on_a_working_container(engine, bstate, runtime_name):
    ctr = ok(engine.buildah("from", "--name", f"isola-wc-{os.getpid()}", engine.image)).out.strip()
    try:
        r = ok(engine.buildah("run", *runtime_args(engine, bstate), ctr, "--", "sh", "-c",
                              "echo in-run; touch /from-run; cat /proc/self/status"))
        assert "in-run" in r.out, str(r)
        assert ran_isola(bstate, runtime_name), str(r)
        ok(engine.buildah("run", *runtime_args(engine, bstate), ctr, "--", "test", "-f", "/from-run"))
        r = engine.buildah("run", *runtime_args(engine, bstate), ctr, "--", "sh", "-c", "exit 4")
        assert r.rc != 0 and "exit status 4" in r.err, str(r)
        info = json.loads(ok(engine.buildah("inspect", ctr)).out)
        assert info["Container"] == ctr
    finally:
        engine.buildah("rm", ctr)
