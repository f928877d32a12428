"""Commands and global options that do not need a running container:
--version, features, spec, --log, --log-format, --debug, --systemd-cgroup."""

import json
import os
import subprocess

import pytest

from conftest import RUNTIME
from helpers import default_config, sh


def test_version(ctx):
    r = ctx.run("--version").ok()
    first = r.out.splitlines()[0]
    assert "version" in first.lower()
    assert any(ch.isdigit() for ch in first)


def test_features_prints_json(ctx):
    data = json.loads(ctx.run("features").ok().out)
    assert data["ociVersionMin"].startswith("1.0")
    assert data["ociVersionMax"].count(".") >= 2
    assert "hooks" in data and "prestart" in data["hooks"]


@pytest.mark.isola_only
def test_features_isola_content(ctx):
    data = json.loads(ctx.run("features").ok().out)
    assert data["ociVersionMin"] == "1.0.0"
    assert data["ociVersionMax"].startswith("1.1")
    assert set(data["hooks"]) == {"prestart", "createRuntime", "createContainer",
                                  "startContainer", "poststart", "poststop"}
    assert {"pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"} <= \
        set(data["linux"]["namespaces"])


def test_unknown_command_fails(ctx):
    r = ctx.run("no-such-command")
    assert r.rc != 0
    assert r.err.strip() != ""


def test_spec_writes_config_that_create_accepts(ctx, bundle):
    b = bundle(None)
    subprocess.run([str(RUNTIME), "spec"], cwd=b.path, check=True, timeout=30)
    config = json.loads((b.path / "config.json").read_text())
    assert config["root"]["path"] == "rootfs"
    assert config["process"]["args"]
    config["process"]["terminal"] = False
    config["process"]["args"] = ["/bin/sh", "-c", "echo spec ok"]
    config["linux"]["cgroupsPath"] = "/" + b.id
    b.config = config
    b.write()
    rc, out, err = ctx.run("run", "--bundle", b.path, b.id)
    assert rc == 0, err
    assert out == "spec ok\n"


def test_spec_bundle_option(ctx):
    d = ctx.hostdir("specdir", 0o755)
    ctx.run("spec", "--bundle", d).ok()
    json.loads((d / "config.json").read_text())


def test_spec_does_not_overwrite(ctx):
    d = ctx.hostdir("specdir", 0o755)
    (d / "config.json").write_text("keep me")
    r = ctx.run("spec", "--bundle", d)
    assert r.rc != 0
    assert (d / "config.json").read_text() == "keep me"


def test_log_format_json(ctx, cid):
    log = ctx.dir / "runtime.log"
    r = ctx.run("state", cid, global_args=["--log", log, "--log-format", "json"])
    assert r.rc != 0
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    assert lines, "nothing was logged"
    for line in lines:
        entry = json.loads(line)
        assert "level" in entry and "msg" in entry, line
    assert any(json.loads(line)["level"] == "error" for line in lines)


def test_log_format_text(ctx, cid):
    log = ctx.dir / "runtime.log"
    r = ctx.run("state", cid, global_args=["--log", log, "--log-format", "text"])
    assert r.rc != 0
    text = log.read_text()
    assert text.strip() != ""
    with pytest.raises(ValueError):
        json.loads(text.splitlines()[0])


def test_invalid_log_format_fails(ctx, cid):
    r = ctx.run("list", global_args=["--log-format", "yaml"])
    assert r.rc != 0


def test_debug_does_not_change_output(ctx, bundle):
    b = bundle(sh("echo hello"))
    rc, out, err = ctx.run("run", "--bundle", b.path, b.id, global_args=["--debug"])
    assert rc == 0, err
    assert out == "hello\n"


@pytest.mark.isola_only
def test_systemd_cgroup_is_a_clear_error(ctx, bundle):
    b = bundle(default_config(["true"]))
    r = ctx.run("create", "--bundle", b.path, b.id, global_args=["--systemd-cgroup"])
    assert r.rc != 0
    assert "systemd" in r.err.lower()
    assert not (ctx.root / b.id).exists()


def test_default_root_is_not_used_with_root_option(ctx, bundle):
    """--root decides where state lives: the container is listed only there."""
    b = bundle(default_config(["sleep", "1000"]))
    ctx.create(b).ok()
    assert (ctx.root / b.id).is_dir()
    other = ctx.hostdir("otherroot", 0o700)
    r = subprocess.run([str(RUNTIME), "--root", str(other), "list", "-q"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0
    assert b.id not in r.stdout
    assert os.listdir(other) == []
