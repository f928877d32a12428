"""process: args, env, cwd, user (uid, gid, umask, additionalGids),
capabilities, rlimits, noNewPrivileges, oomScoreAdj."""

import os
import resource

import pytest

from helpers import cap_mask, default_config, proc_status, sh


def test_args_preserved_exactly(run_container):
    config = default_config(["/bin/sh", "-c", 'printf "%s|" "$@"', "sh", "a b", "", "c'd",
                             "$HOME", "*"])
    rc, out, err = run_container(config)
    assert rc == 0, err
    assert out == "a b||c'd|$HOME|*|"


def test_args0_found_through_path(run_container):
    rc, out, err = run_container(default_config(["echo", "via", "PATH"]))
    assert rc == 0, err
    assert out == "via PATH\n"


def test_env(run_container):
    config = default_config(["env"])
    config["process"]["env"] += ["FOO=bar", "WITH_SPACE=a b", "EMPTY="]
    rc, out, err = run_container(config)
    assert rc == 0, err
    env = out.splitlines()
    for e in ["FOO=bar", "WITH_SPACE=a b", "EMPTY=", "TERM=xterm",
              "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]:
        assert e in env, out


@pytest.mark.parametrize("cwd", ["/", "/tmp", "/home/user"])
def test_cwd(run_container, cwd):
    rc, out, err = run_container(sh("pwd; readlink /proc/self/cwd", cwd=cwd))
    assert rc == 0, err
    assert out.splitlines() == [cwd, cwd]


def test_user_uid_gid_umask_additional_gids(run_container):
    config = sh("id -u; id -g; grep '^Groups:' /proc/self/status; umask; "
                "touch /tmp/f; stat -c '%a %u %g' /tmp/f")
    config["process"]["user"] = {"uid": 1000, "gid": 1000, "umask": 0o027,
                                 "additionalGids": [5, 100]}
    config["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                             "options": ["mode=1777"]})
    rc, out, err = run_container(config)
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0] == "1000"
    assert lines[1] == "1000"
    assert sorted(lines[2].split()[1:], key=int) == ["5", "100"]
    assert lines[3] == "0027"
    assert lines[4] == "640 1000 1000"


def test_user_without_additional_gids_has_no_groups(run_container):
    config = sh("grep '^Groups:' /proc/self/status; id")
    config["process"]["user"] = {"uid": 1000, "gid": 1000}
    rc, out, err = run_container(config)
    assert rc == 0, err
    assert out.splitlines()[0].split() == ["Groups:"]
    assert "uid=1000(user) gid=1000(user)" in out


def test_default_umask(run_container):
    rc, out, err = run_container(sh("umask"))
    assert rc == 0, err
    assert out.strip() == "0022"


def _caps_of(out):
    st = proc_status(out)
    return {k: int(st[k], 16) for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")}


def test_capabilities_root(run_container):
    """uid 0 with all five sets equal: every set shows exactly that set."""
    names = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETUID", "CAP_SETGID"]
    config = sh("cat /proc/self/status")
    config["process"]["capabilities"] = {k: list(names) for k in (
        "bounding", "effective", "permitted", "inheritable", "ambient")}
    rc, out, err = run_container(config)
    assert rc == 0, err
    want = cap_mask(names)
    caps = _caps_of(out)
    assert caps["CapBnd"] == want
    assert caps["CapPrm"] == want
    assert caps["CapEff"] == want
    assert caps["CapInh"] == want


def test_capabilities_non_root_five_sets(run_container):
    """As uid 1000 after execve (no file capabilities): bounding and inheritable
    are kept, ambient is kept, and permitted = effective = ambient."""
    bounding = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETUID", "CAP_NET_RAW"]
    permitted = ["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW"]
    inheritable = ["CAP_KILL", "CAP_NET_BIND_SERVICE"]
    ambient = ["CAP_NET_BIND_SERVICE"]
    config = sh("cat /proc/self/status")
    config["process"]["user"] = {"uid": 1000, "gid": 1000}
    config["process"]["capabilities"] = {
        "bounding": bounding, "permitted": permitted, "effective": permitted,
        "inheritable": inheritable, "ambient": ambient}
    rc, out, err = run_container(config)
    assert rc == 0, err
    caps = _caps_of(out)
    assert caps["CapBnd"] == cap_mask(bounding), hex(caps["CapBnd"])
    assert caps["CapInh"] == cap_mask(inheritable), hex(caps["CapInh"])
    assert caps["CapAmb"] == cap_mask(ambient), hex(caps["CapAmb"])
    assert caps["CapPrm"] == cap_mask(ambient), hex(caps["CapPrm"])
    assert caps["CapEff"] == cap_mask(ambient), hex(caps["CapEff"])


def test_no_capabilities(run_container):
    config = sh("cat /proc/self/status")
    config["process"]["capabilities"] = {k: [] for k in (
        "bounding", "effective", "permitted", "inheritable", "ambient")}
    rc, out, err = run_container(config)
    assert rc == 0, err
    assert set(_caps_of(out).values()) == {0}


def test_capability_enforced(run_container):
    """Without CAP_CHOWN, root cannot chown a file it does not own."""
    config = sh("touch /tmp/f && chown 1000 /tmp/f && echo chowned")
    config["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"})
    rc, out, err = run_container(config)  # default caps: no CAP_CHOWN
    assert rc != 0
    assert "chowned" not in out


@pytest.mark.parametrize("rtype,flag,soft,hard", [
    ("RLIMIT_NOFILE", "n", 512, 1000),
    ("RLIMIT_CORE", "c", 0, 0),
    ("RLIMIT_NPROC", "u", 100, 200),
])
def test_rlimits(run_container, rtype, flag, soft, hard):
    config = sh(f"ulimit -S -{flag}; ulimit -H -{flag}")
    config["process"]["rlimits"] = [{"type": rtype, "soft": soft, "hard": hard}]
    rc, out, err = run_container(config)
    assert rc == 0, err
    if rtype == "RLIMIT_CORE":  # ulimit -c counts 512-byte blocks (or KiB); 0 is 0
        assert out.split() == ["0", "0"]
    else:
        assert out.split() == [str(soft), str(hard)]


def _has_sys_resource():
    with open("/proc/self/status") as f:
        return bool(int(proc_status(f.read())["CapEff"], 16) & (1 << 24))


def _over_limits():
    with open("/proc/sys/fs/nr_open") as f:
        nr_open = int(f.read())
    cases = [pytest.param(nr_open + 1, id="above-nr_open")]
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    skip = []
    if _has_sys_resource():
        skip = [pytest.mark.skip(reason="this host has CAP_SYS_RESOURCE, which allows raising "
                                        "a hard limit")]
    elif hard == resource.RLIM_INFINITY or hard >= nr_open:
        skip = [pytest.mark.skip(reason="the hard RLIMIT_NOFILE is already at the maximum")]
    cases.append(pytest.param(hard + 1 if hard != resource.RLIM_INFINITY else 0,
                              id="above-hard-limit", marks=skip))
    return cases


@pytest.mark.parametrize("value", _over_limits())
def test_rlimit_above_allowed_fails_cleanly(ctx, bundle, value):
    config = sh("echo should not run")
    config["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": value, "hard": value}]
    b = bundle(config)
    r = ctx.run("run", "--bundle", b.path, b.id)
    assert r.rc != 0
    assert "should not run" not in r.out
    assert r.err.strip() != ""
    assert ctx.run("state", b.id).rc != 0
    assert not (ctx.root / b.id).exists()
    assert ctx.cgroup_dirs() == []


@pytest.mark.parametrize("nnp", [True, False])
def test_no_new_privileges(run_container, nnp):
    config = sh("grep NoNewPrivs /proc/self/status")
    config["process"]["noNewPrivileges"] = nnp
    rc, out, err = run_container(config)
    assert rc == 0, err
    assert out.split() == ["NoNewPrivs:", "1" if nnp else "0"]


@pytest.mark.parametrize("adj", [100, 500, 1000])
def test_oom_score_adj(run_container, adj):
    config = sh("cat /proc/self/oom_score_adj")
    config["process"]["oomScoreAdj"] = adj
    rc, out, err = run_container(config)
    assert rc == 0, err
    assert out.strip() == str(adj)


def test_oom_score_adj_not_inherited_by_runtime(ctx, bundle):
    """Setting it for the container does not change the caller's own value."""
    before = open("/proc/self/oom_score_adj").read()
    config = sh("cat /proc/self/oom_score_adj")
    config["process"]["oomScoreAdj"] = 700
    b = bundle(config)
    ctx.run("run", "--bundle", b.path, b.id).ok()
    assert open("/proc/self/oom_score_adj").read() == before
