"""The image store of the `isola` manager CLI ($ISOLA_BUILD/isola): the
built-in busybox image, importing rootfs tarballs and OCI image layouts
(made here, in Python), export, delete, aliases, JSON output, the state
database, and hostile archives that must be refused without writing
anything outside the store or leaving a half-made image behind."""

import gzip
import hashlib
import io
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import tarfile
import tempfile
import threading
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("ISOLA_BUILD") or REPO / "build").resolve()
ISOLA = BUILD / "isola"
TIMEOUT = float(os.environ.get("ISOLA_IT_TIMEOUT", "20"))


class Store:
    """One state directory (ISOLA_STATE_DIR) and a scratch directory beside it."""

    def __init__(self, base):
        self.base = Path(base)
        self.state = self.base / "state"
        self.scratch = self.base / "scratch"
        self.scratch.mkdir()

    def run(self, *args, env_state=True):
        env = dict(os.environ)
        env.pop("ISOLA_STATE_DIR", None)
        if env_state:
            env["ISOLA_STATE_DIR"] = str(self.state)
        p = subprocess.run([str(ISOLA), *map(str, args)], capture_output=True, text=True,
                           timeout=TIMEOUT, env=env, stdin=subprocess.DEVNULL)
        return p

    def ok(self, *args):
        p = self.run(*args)
        assert p.returncode == 0, f"isola {' '.join(map(str, args))}: exit {p.returncode}\n{p.stderr}"
        return p.stdout

    def fails(self, *args, match=None):
        p = self.run(*args)
        assert p.returncode != 0, f"isola {' '.join(map(str, args))} succeeded:\n{p.stdout}"
        assert p.stderr.startswith("isola: "), p.stderr
        assert p.stdout == "", p.stdout
        if match:
            assert match in p.stderr, p.stderr
        return p.stderr

    def info(self, ref):
        return json.loads(self.ok("image", "info", "--format", "json", ref))

    def images(self):
        return json.loads(self.ok("image", "list", "--format", "json"))

    def rootfs(self, ref):
        return self.state / "images" / self.info(ref)["fingerprint"] / "rootfs"

    def store_entries(self):
        """Everything directly under <state>/images (temp dirs would show here)."""
        return sorted(p.name for p in (self.state / "images").iterdir())


@pytest.fixture
def store():
    if not ISOLA.exists():
        pytest.fail(f"{ISOLA} does not exist: build it with `make`", pytrace=False)
    base = tempfile.mkdtemp(prefix="isola-image.", dir="/tmp")
    yield Store(base)
    shutil.rmtree(base, ignore_errors=True)


# ---- archive builders ---------------------------------------------------------

def add(tf, name, type=tarfile.REGTYPE, data=b"", mode=0o644, linkname="", uid=0, gid=0,
        devmajor=0, devminor=0):
    ti = tarfile.TarInfo(name)
    ti.type = type
    ti.mode = mode
    ti.uid, ti.gid = uid, gid
    ti.mtime = 1700000000
    ti.linkname = linkname
    ti.devmajor, ti.devminor = devmajor, devminor
    if type == tarfile.REGTYPE:
        ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))
    else:
        tf.addfile(ti)


def make_tar(path, members, compression=""):
    """members: list of add() keyword dicts. compression: '', 'gz' or 'zst'."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for m in members:
            add(tf, **m)
    raw = buf.getvalue()
    if compression == "gz":
        raw = gzip.compress(raw)
    elif compression == "zst":
        raw = subprocess.run(["zstd", "-q", "-c"], input=raw, capture_output=True, check=True).stdout
    Path(path).write_bytes(raw)
    return Path(path)


SAMPLE = [
    dict(name="bin", type=tarfile.DIRTYPE, mode=0o755),
    dict(name="bin/hello", data=b"#!/bin/sh\necho hello\n", mode=0o755),
    dict(name="bin/suid", data=b"x", mode=0o4755),
    dict(name="bin/hello-link", type=tarfile.LNKTYPE, linkname="bin/hello"),
    dict(name="bin/sh", type=tarfile.SYMTYPE, linkname="/bin/hello"),
    dict(name="etc", type=tarfile.DIRTYPE, mode=0o755),
    dict(name="etc/motd", data=b"welcome\n", uid=1000, gid=1000),
    dict(name="etc/rel", type=tarfile.SYMTYPE, linkname="../bin/hello"),
    dict(name="empty", type=tarfile.DIRTYPE, mode=0o700),
    dict(name="run/fifo", type=tarfile.FIFOTYPE, mode=0o600),
    dict(name="deep/a/b/c.txt", data=b"deep"),  # parents without their own entries
]


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def make_oci_layout(d, layers, arch="amd64", nested_index=False):
    """An OCI image layout in directory d with the given layer tarballs (bytes).
    Returns the manifest digest (hex)."""
    d = Path(d)
    blobs = d / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data):
        h = sha256(data)
        (blobs / h).write_bytes(data)
        return h

    config = json.dumps({"architecture": arch, "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    ch = put(config)
    descs = []
    for data in layers:
        gz = data[:2] == b"\x1f\x8b"
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if gz else ""),
                      "digest": "sha256:" + put(data), "size": len(data)})
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": "sha256:" + ch, "size": len(config)},
                           "layers": descs}).encode()
    mh = put(manifest)
    mdesc = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + mh,
             "size": len(manifest), "platform": {"architecture": arch, "os": "linux"}}
    if nested_index:
        other = dict(mdesc, platform={"architecture": "s390x", "os": "linux"},
                     digest="sha256:" + "0" * 64)
        inner = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                            "manifests": [other, mdesc]}).encode()
        ih = put(inner)
        mdesc = {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": "sha256:" + ih,
                 "size": len(inner)}
    (d / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [mdesc]}))
    (d / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    return mh


def tar_bytes(members, compression=""):
    with tempfile.NamedTemporaryFile() as f:
        make_tar(f.name, members, compression)
        return Path(f.name).read_bytes()


OCI_LAYER1 = [
    dict(name="etc", type=tarfile.DIRTYPE, mode=0o755),
    dict(name="etc/a", data=b"a from layer 1"),
    dict(name="etc/b", data=b"b from layer 1"),
    dict(name="opq", type=tarfile.DIRTYPE, mode=0o755),
    dict(name="opq/old", data=b"old"),
    dict(name="opq/sub", type=tarfile.DIRTYPE, mode=0o755),
    dict(name="opq/sub/older", data=b"older"),
    dict(name="gone", type=tarfile.DIRTYPE, mode=0o755),
    dict(name="gone/file", data=b"x"),
    dict(name="replaced", data=b"file in layer 1"),
]
OCI_LAYER2 = [
    dict(name="etc/.wh.a", data=b""),
    dict(name="opq/kept-before-marker", data=b"mine"),  # same layer, before the marker
    dict(name="opq/.wh..wh..opq", data=b""),
    dict(name="opq/new", data=b"new"),
    dict(name=".wh.gone", data=b""),
    dict(name="replaced", type=tarfile.DIRTYPE, mode=0o755),
    dict(name="replaced/inside", data=b"dir in layer 2"),
    dict(name="etc/c", data=b"c from layer 2"),
]


def check_oci_rootfs(root):
    assert not (root / "etc/a").exists()
    assert (root / "etc/b").read_bytes() == b"b from layer 1"
    assert (root / "etc/c").read_bytes() == b"c from layer 2"
    assert sorted(os.listdir(root / "opq")) == ["kept-before-marker", "new"]
    assert not (root / "gone").exists()
    assert (root / "replaced/inside").read_bytes() == b"dir in layer 2"
    assert not list(root.rglob(".wh.*"))


# ---- the built-in image, listing, the database ----------------------------------

def test_builtin_busybox_made_on_first_use(store):
    assert not store.state.exists()
    imgs = store.images()
    assert [i["aliases"] for i in imgs] == [["busybox"]]
    bb = imgs[0]
    assert bb["type"] == "builtin" and bb["architecture"] == os.uname().machine
    assert len(bb["fingerprint"]) == 64 and bb["size"] > 100000
    root = store.rootfs("busybox")
    assert (root / "bin/busybox").stat().st_size > 100000
    # one hard link per applet, as scripts/mkrootfs.sh makes
    assert (root / "bin/sh").stat().st_ino == (root / "bin/busybox").stat().st_ino
    assert "root:x:0:0" in (root / "etc/passwd").read_text()
    assert stat.S_IMODE((root / "tmp").stat().st_mode) == 0o1777
    # the same image on the next command, not a second one
    assert store.images() == imgs
    out = subprocess.run([str(root / "bin/busybox"), "echo", "ok"], capture_output=True, text=True)
    assert out.stdout == "ok\n"


def test_builtin_cannot_be_deleted(store):
    store.fails("image", "delete", "busybox", match="built-in")
    assert [i["aliases"] for i in store.images()] == [["busybox"]]


def test_table_output(store):
    out = store.ok("image", "list")
    head, row = out.splitlines()
    assert head.split() == ["ALIAS", "FINGERPRINT", "TYPE", "ARCH", "SIZE", "CREATED"]
    assert row.split()[:4] == ["busybox", store.info("busybox")["fingerprint"][:12], "builtin",
                               os.uname().machine]
    info = store.ok("image", "info", "busybox")
    assert "Fingerprint:  " + store.info("busybox")["fingerprint"] in info
    assert "Aliases:      busybox" in info


def test_state_dir_option_and_database(store):
    other = store.base / "other"
    p = store.run("--state-dir", other, "image", "list", "--format", "json", env_state=False)
    assert p.returncode == 0, p.stderr
    assert (other / "isola.db").exists() and not store.state.exists()
    db = sqlite3.connect(other / "isola.db")
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA user_version").fetchone()[0] >= 1
        rows = db.execute("SELECT i.type, a.name FROM images i JOIN image_aliases a "
                          "ON a.image_id = i.id").fetchall()
        assert rows == [("builtin", "busybox")]
    finally:
        db.close()


def test_usage_errors(store):
    store.fails("image", "frobnicate", match='unknown command "image frobnicate"')
    store.fails("image", "list", "--format", "yaml", match="--format: must be table or json")
    store.fails("image", "info", match="expected one image")
    store.fails("image", "export", "busybox", match="expected IMAGE and FILE")
    store.fails("image", "export", "busybox", store.scratch / "x.zip", match="must end in .tar")
    assert store.run("--help").returncode == 0


def test_unknown_image(store):
    store.fails("image", "info", "nosuch", match="image 'nosuch' not found")
    store.fails("image", "delete", "nosuch", match="image 'nosuch' not found")
    store.fails("image", "export", "nosuch", store.scratch / "x.tar", match="image 'nosuch' not found")
    assert not (store.scratch / "x.tar").exists()


# ---- import, export, delete, aliases -----------------------------------------------

@pytest.mark.parametrize("compression", ["", "gz", "zst"])
def test_import_rootfs_tarball(store, compression):
    ext = {"": ".tar", "gz": ".tar.gz", "zst": ".tar.zst"}[compression]
    tb = make_tar(store.scratch / ("root" + ext), SAMPLE, compression)
    out = store.ok("image", "import", tb, "--alias", "sample")
    info = store.info("sample")
    assert out == f"Image imported with fingerprint: {info['fingerprint']}\n"
    assert info["fingerprint"] == sha256(tb.read_bytes())
    assert info["type"] == "rootfs" and info["aliases"] == ["sample"]
    assert info["source"] == str(tb)
    root = store.rootfs("sample")
    assert (root / "bin/hello").read_bytes() == b"#!/bin/sh\necho hello\n"
    assert stat.S_IMODE((root / "bin/suid").stat().st_mode) == 0o4755  # setuid kept
    assert (root / "bin/hello-link").stat().st_ino == (root / "bin/hello").stat().st_ino
    assert os.readlink(root / "bin/sh") == "/bin/hello"
    assert os.readlink(root / "etc/rel") == "../bin/hello"
    st = (root / "etc/motd").stat()
    assert (st.st_uid, st.st_gid) == (1000, 1000)
    assert int(st.st_mtime) == 1700000000
    assert stat.S_IMODE((root / "empty").stat().st_mode) == 0o700
    assert stat.S_ISFIFO((root / "run/fifo").lstat().st_mode)
    assert (root / "deep/a/b/c.txt").read_bytes() == b"deep"
    # no progress bar (stderr is not a terminal), nothing left over
    p = store.run("image", "list")
    assert p.stderr == ""
    assert not [n for n in store.store_entries() if n.startswith(".")]


def test_aliases_and_fingerprint_prefix(store):
    tb = make_tar(store.scratch / "a.tar", SAMPLE[:2])
    fp = sha256(tb.read_bytes())
    store.ok("image", "import", tb)
    info = store.info(fp[:8])
    assert info["fingerprint"] == fp and info["aliases"] == []
    # an image without alias lists after the aliased ones
    assert [i["fingerprint"] for i in store.images()][-1] == fp
    tb2 = make_tar(store.scratch / "b.tar", SAMPLE[:3])
    store.ok("image", "import", tb2, "--alias", "two")
    # duplicate alias: refused before anything is extracted
    tb3 = make_tar(store.scratch / "c.tar", SAMPLE[:4])
    store.fails("image", "import", tb3, "--alias", "two", match="alias 'two' already exists")
    store.fails("image", "import", tb3, "--alias", "busybox", match="alias 'busybox' already exists")
    store.fails("image", "import", tb3, "--alias", "bad/name", match="invalid character '/'")
    # the same archive twice
    store.fails("image", "import", tb, match=f"image {fp} already exists")
    assert len(store.images()) == 3
    assert not [n for n in store.store_entries() if n.startswith(".")]


def test_export_round_trip(store, tmp_path):
    tb = make_tar(store.scratch / "root.tar", SAMPLE)
    store.ok("image", "import", tb, "--alias", "sample")
    for ext, opener in ((".tar", "r:"), (".tar.gz", "r:gz"), (".tar.zst", None)):
        out = store.scratch / ("exported" + ext)
        store.ok("image", "export", "sample", out)
        assert [p.name for p in store.scratch.iterdir() if ".tmp-" in p.name] == []
        if opener:
            with tarfile.open(out, opener) as tf:
                m = {t.name: t for t in tf.getmembers()}
                assert m["bin/hello"].isfile() and tf.extractfile("bin/hello").read().startswith(b"#!")
                assert m["bin/suid"].mode == 0o4755
                assert m["bin/sh"].issym() and m["bin/sh"].linkname == "/bin/hello"
                assert m["etc/motd"].uid == 1000
                assert m["run/fifo"].isfifo()
                links = {m["bin/hello"].name, m["bin/hello-link"].name}
                assert any(m[n].islnk() for n in links)
    # re-import the zstd export: the same tree
    store.ok("image", "import", store.scratch / "exported.tar.zst", "--alias", "again")
    a, b = store.rootfs("sample"), store.rootfs("again")

    def tree(root):
        out = {}
        for p in sorted(root.rglob("*")):
            st = p.lstat()
            rel = str(p.relative_to(root))
            kind = stat.S_IFMT(st.st_mode)
            content = os.readlink(p) if p.is_symlink() else (p.read_bytes() if p.is_file() else None)
            out[rel] = (kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, content)
        return out
    assert tree(a) == tree(b)
    # busybox exports too
    store.ok("image", "export", "busybox", store.scratch / "bb.tar.gz")
    with tarfile.open(store.scratch / "bb.tar.gz") as tf:
        assert "bin/busybox" in tf.getnames()


def test_export_replaces_file_atomically(store):
    out = store.scratch / "x.tar"
    out.write_text("old")
    store.ok("image", "export", "busybox", out)
    assert tarfile.is_tarfile(out)
    # unwritable destination directory: error, nothing left
    store.fails("image", "export", "busybox", store.scratch / "nodir" / "x.tar", match="nodir")


def test_delete(store):
    tb = make_tar(store.scratch / "a.tar", SAMPLE)
    store.ok("image", "import", tb, "--alias", "victim")
    fp = store.info("victim")["fingerprint"]
    assert (store.state / "images" / fp).is_dir()
    assert store.ok("image", "delete", "victim") == ""
    assert not (store.state / "images" / fp).exists()
    store.fails("image", "info", "victim", match="not found")
    assert [i["aliases"] for i in store.images()] == [["busybox"]]
    assert store.store_entries() == [store.info("busybox")["fingerprint"]]
    # the alias is free again
    store.ok("image", "import", tb, "--alias", "victim")


def test_concurrent_imports_serialize(store):
    tars = [make_tar(store.scratch / f"t{i}.tar", SAMPLE + [dict(name=f"id{i}", data=b"%d" % i)])
            for i in range(4)]
    store.images()  # the built-in image first
    results = [None] * len(tars)

    def worker(i):
        results[i] = store.run("image", "import", tars[i], "--alias", f"c{i}")
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(tars))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    assert sorted(a for i in store.images() for a in i["aliases"]) == ["busybox", "c0", "c1", "c2", "c3"]


# ---- OCI image layouts ------------------------------------------------------------------

def test_import_oci_layout_directory(store):
    layout = store.scratch / "layout"
    mh = make_oci_layout(layout, [tar_bytes(OCI_LAYER1, "gz"), tar_bytes(OCI_LAYER2)])
    store.ok("image", "import", layout, "--alias", "oci")
    info = store.info("oci")
    assert info["type"] == "oci" and info["fingerprint"] == mh
    assert info["architecture"] == "x86_64"
    check_oci_rootfs(store.rootfs("oci"))


def test_import_oci_layout_archive(store):
    layout = store.scratch / "layout"
    mh = make_oci_layout(layout, [tar_bytes(OCI_LAYER1), tar_bytes(OCI_LAYER2, "gz")],
                         nested_index=True)
    archive = store.scratch / "image.oci.tar"
    with tarfile.open(archive, "w") as tf:
        for p in sorted(layout.rglob("*")):
            tf.add(p, arcname=str(p.relative_to(layout)), recursive=False)
    store.ok("image", "import", archive, "--alias", "ocitar")
    info = store.info("ocitar")
    assert info["type"] == "oci" and info["fingerprint"] == mh
    root = store.rootfs("ocitar")
    check_oci_rootfs(root)
    assert not (root.parent / "layout").exists()


def test_oci_layer_digest_mismatch(store):
    layout = store.scratch / "layout"
    make_oci_layout(layout, [tar_bytes(OCI_LAYER1), tar_bytes(OCI_LAYER2)])
    manifest = next(p for p in (layout / "blobs/sha256").iterdir()
                    if b'"layers"' in p.read_bytes())
    layer = json.loads(manifest.read_bytes())["layers"][1]["digest"].split(":")[1]
    blob = layout / "blobs/sha256" / layer
    blob.write_bytes(tar_bytes(OCI_LAYER2 + [dict(name="extra", data=b"tampered")]))
    err = store.fails("image", "import", layout, match="does not match its digest")
    assert "layers[1]" in err
    assert len(store.images()) == 1
    assert not [n for n in store.store_entries() if n.startswith(".")]


def test_oci_bad_layouts(store):
    d = store.scratch / "notlayout"
    d.mkdir()
    store.fails("image", "import", d, match="must be an OCI image layout")
    layout = store.scratch / "layout"
    make_oci_layout(layout, [tar_bytes(OCI_LAYER1)])
    idx = json.loads((layout / "index.json").read_text())
    idx["manifests"][0]["digest"] = "sha256:../../../../etc/passwd"
    (layout / "index.json").write_text(json.dumps(idx))
    store.fails("image", "import", layout, match="digest must be sha256:<64 hex digits>")
    (layout / "index.json").write_text("{not json")
    store.fails("image", "import", layout, match="index.json:1:")
    assert not [n for n in store.store_entries() if n.startswith(".")]


# ---- hostile and corrupt archives -------------------------------------------------------

def hostile_cases(outside):
    o = str(outside)
    return {
        "absolute path": ([dict(name=o + "/abs", data=b"pwned")], "absolute path refused"),
        "dot-dot": ([dict(name="../../../../../../../.." + o + "/dotdot", data=b"pwned")],
                    "'..' component refused"),
        "dot-dot inside": ([dict(name="a/../../x", data=b"pwned")], "'..' component refused"),
        "symlink then file through it": (
            [dict(name="evil", type=tarfile.SYMTYPE, linkname=o),
             dict(name="evil/through", data=b"pwned")],
            "'evil' is a symbolic link"),
        "relative symlink escaping": (
            [dict(name="up", type=tarfile.SYMTYPE, linkname="../../../../../../../.." + o)],
            "leads outside the image"),
        "hardlink to absolute path": (
            [dict(name="hl", type=tarfile.LNKTYPE, linkname=o + "/target")],
            "absolute path refused"),
        "hardlink via dot-dot": (
            [dict(name="hl", type=tarfile.LNKTYPE, linkname="../../../../../../.." + o + "/target")],
            "'..' component refused"),
        "hardlink through symlink": (
            [dict(name="evil", type=tarfile.SYMTYPE, linkname=o),
             dict(name="hl", type=tarfile.LNKTYPE, linkname="evil/target")],
            "'evil' is a symbolic link"),
        "character device": (
            [dict(name="dev/null", type=tarfile.CHRTYPE, mode=0o666, devmajor=1, devminor=3)],
            "character device refused"),
        "block device": (
            [dict(name="dev/sda", type=tarfile.BLKTYPE, mode=0o660, devmajor=8, devminor=0)],
            "block device refused"),
    }


@pytest.mark.parametrize("case", list(hostile_cases("/x")))
def test_hostile_archive_refused(store, case):
    outside = store.base / "outside"
    outside.mkdir()
    (outside / "target").write_text("host file")
    members, message = hostile_cases(outside)[case]
    # a good member first, so that a half-made image would exist
    tb = make_tar(store.scratch / "hostile.tar", SAMPLE + members)
    store.images()  # built-in image made, so the store is comparable
    before = store.store_entries()
    err = store.fails("image", "import", tb, "--alias", "hostile", match=message)
    assert "member '" in err
    assert sorted(os.listdir(outside)) == ["target"]
    assert (outside / "target").read_text() == "host file"
    assert (outside / "target").stat().st_nlink == 1
    assert store.store_entries() == before
    assert len(store.images()) == 1
    store.fails("image", "info", "hostile", match="not found")


@pytest.mark.parametrize("kind", ["garbage", "truncated gzip", "empty"])
def test_corrupt_archive_refused(store, kind):
    store.images()
    before = store.store_entries()
    path = store.scratch / "bad.tar.gz"
    if kind == "garbage":
        path.write_bytes(os.urandom(4096))
    elif kind == "truncated gzip":
        data = tar_bytes(SAMPLE + [dict(name="big", data=os.urandom(200000))], "gz")
        path.write_bytes(data[:len(data) // 2])
    else:
        path.write_bytes(b"")
    err = store.fails("image", "import", path)
    assert str(path) in err
    assert store.store_entries() == before
    assert len(store.images()) == 1


def test_missing_file(store):
    store.fails("image", "import", store.scratch / "nosuch.tar", match="nosuch.tar")


def test_stale_temp_dir_collected(store):
    store.images()
    stale = store.state / "images" / ".tmp-stale1"
    (stale / "rootfs").mkdir(parents=True)
    os.utime(stale, (1, 1))
    store.images()
    assert not stale.exists()


# ---- import limits: archives that expand without end, inputs that never end ----------

def zeros_tar_gz(path, size):
    """A .tar.gz with one file of `size` zero bytes: gzip packs zeros about 1000:1."""
    class Zeros(io.RawIOBase):
        def __init__(self, n):
            self.left = n

        def readable(self):
            return True

        def readinto(self, b):
            n = min(len(b), self.left)
            b[:n] = bytes(n)
            self.left -= n
            return n

    with tarfile.open(path, "w:gz", compresslevel=9) as tf:
        ti = tarfile.TarInfo("zeros")
        ti.size = size
        tf.addfile(ti, io.BufferedReader(Zeros(size), 1 << 20))
    return Path(path)


def assert_nothing_imported(store, before):
    assert store.store_entries() == before
    assert len(store.images()) == 1


def test_archive_expanding_a_thousandfold_is_refused(store):
    bomb = zeros_tar_gz(store.scratch / "bomb.tar.gz", 300 * 1000 * 1000)
    assert bomb.stat().st_size < 400 * 1000  # ~300 KB
    store.images()
    before = store.store_entries()
    err = store.fails("image", "import", bomb, match="--max-ratio")
    assert str(bomb) in err and "member 'zeros'" in err, err
    assert_nothing_imported(store, before)
    # the limits are the caller's to raise
    small = zeros_tar_gz(store.scratch / "small.tar.gz", 2 * 1000 * 1000)
    store.ok("image", "import", small, "--alias", "small")  # under the 64 MiB floor
    store.fails("image", "import", small, "--max-size", "1MiB", match="--max-size")
    store.fails("image", "import", small, "--max-size", "1XB", match='--max-size: "1XB"')
    store.fails("image", "import", small, "--max-ratio", "0", match="--max-ratio")


def test_sparse_file_declaring_4_gib_is_refused(store):
    d = store.scratch / "sparse"
    d.mkdir()
    with open(d / "hole", "wb") as f:
        f.truncate(4 << 30)
    tb = store.scratch / "sparse.tar"
    subprocess.run(["tar", "--sparse", "-C", str(d), "-cf", str(tb), "hole"], check=True)
    assert tb.stat().st_size <= 20 * 1024  # ~10 KB
    store.images()
    before = store.store_entries()
    err = store.fails("image", "import", tb, match="member 'hole'")
    assert "--max-ratio" in err or "--max-size" in err, err
    assert_nothing_imported(store, before)


@pytest.mark.parametrize("kind", ["/dev/zero", "fifo", "socket"])
def test_endless_inputs_are_refused_up_front(store, kind):
    store.images()
    before = store.store_entries()
    if kind == "/dev/zero":
        path, what = Path("/dev/zero"), "character device"
    elif kind == "fifo":
        path, what = store.scratch / "pipe", "FIFO"
        os.mkfifo(path)
    else:
        import socket
        path, what = store.scratch / "sock", "socket"
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(path))
    err = store.fails("image", "import", path, match=what)
    assert str(path) in err and "regular file" in err, err
    assert_nothing_imported(store, before)


def test_oci_blob_that_is_a_fifo_is_refused(store):
    layout = store.scratch / "layout"
    make_oci_layout(layout, [tar_bytes(OCI_LAYER1)])
    manifest = next(p for p in (layout / "blobs/sha256").iterdir() if b'"layers"' in p.read_bytes())
    layer = json.loads(manifest.read_bytes())["layers"][0]["digest"].split(":")[1]
    (layout / "blobs/sha256" / layer).unlink()
    os.mkfifo(layout / "blobs/sha256" / layer)
    store.images()
    before = store.store_entries()
    store.fails("image", "import", layout, match="FIFO")
    assert_nothing_imported(store, before)
