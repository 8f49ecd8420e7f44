"""bnn_flow.data.download against a local http.server (no network): checksums, atomic files, fast failure
offline, mirrors, end-to-end downloads, and path-safe archive extraction."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import socket
import stat
import tarfile
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import bnn_flow.data as data
from bnn_flow.data import download
from bnn_flow.errors import BadInputError, DataNotFoundError

try:  # tests/ may or may not be a package
    from tests import data_fixtures as fx
except ImportError:  # pragma: no cover
    import data_fixtures as fx


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fx.isolate(monkeypatch, tmp_path)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:  # keep pytest output clean
        pass


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """(base URL, served folder) of an HTTP server on 127.0.0.1 running in a thread."""
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(served))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/", served
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again on exit: connecting is refused


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_download_good_checksum(server, tmp_path: Path) -> None:
    url, served = server
    payload = np.random.default_rng(0).integers(0, 256, 3_000_000, dtype=np.uint8).tobytes()
    (served / "blob.bin").write_bytes(payload)
    dest = tmp_path / "dl" / "blob.bin"
    download.download_file([url + "blob.bin"], dest, hashlib.md5(payload).hexdigest())
    assert dest.read_bytes() == payload
    assert [p.name for p in dest.parent.iterdir()] == ["blob.bin"]


def test_download_bad_checksum_leaves_nothing(server, tmp_path: Path) -> None:
    url, served = server
    (served / "blob.bin").write_bytes(b"tampered")
    dest_dir = tmp_path / "dl"
    with pytest.raises(DataNotFoundError, match="checksum mismatch"):
        download.download_file([url + "blob.bin"], dest_dir / "blob.bin", "0" * 32)
    assert list(dest_dir.iterdir()) == []  # neither the file nor a temporary


def test_download_falls_back_to_next_mirror(server, tmp_path: Path) -> None:
    url, served = server
    (served / "f.txt").write_bytes(b"hello")
    dest = tmp_path / "f.txt"
    urls = [f"http://127.0.0.1:{_closed_port()}/f.txt", url + "missing/f.txt", url + "f.txt"]
    download.download_file(urls, dest, hashlib.md5(b"hello").hexdigest())
    assert dest.read_bytes() == b"hello"


def test_unreachable_fails_fast(tmp_path: Path) -> None:
    start = time.monotonic()
    with pytest.raises(DataNotFoundError, match="could not download f.bin"):
        download.download_file([f"http://127.0.0.1:{_closed_port()}/f.bin"], tmp_path / "f.bin", "0" * 32)
    assert time.monotonic() - start < 10
    assert not (tmp_path / "f.bin").exists()


def test_dns_deadline(monkeypatch) -> None:
    def hang(*_args, **_kw):
        time.sleep(5)

    monkeypatch.setattr(download.socket, "getaddrinfo", hang)
    start = time.monotonic()
    with pytest.raises(OSError, match="no DNS answer"):
        download._resolve("example.invalid", 80, timeout=0.2)
    assert time.monotonic() - start < 2


def test_load_dataset_downloads_mnist(server, monkeypatch) -> None:
    url, served = server
    written = fx.write_mnist(served, seed=21)
    resources = {
        split: tuple(
            download.Resource(
                name, _md5(served / name), (f"http://127.0.0.1:{_closed_port()}/", url + name), name
            )
            for name in (f"{p}-images-idx3-ubyte.gz", f"{p}-labels-idx1-ubyte.gz")
        )
        for split, p in (("train", "train"), ("test", "t10k"))
    }
    monkeypatch.setitem(download.RESOURCES, "mnist", resources)
    images, labels = data.load_dataset("mnist", "test")
    np.testing.assert_array_equal(images, written["test"][0])
    np.testing.assert_array_equal(labels, written["test"][1])
    cache = Path.home() / ".cache" / "bnn-flow" / "mnist"
    assert sorted(p.name for p in cache.iterdir()) == [
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ]
    assert data.find_dataset("mnist") is None  # the train split is still missing


def test_load_dataset_downloads_cifar_archive(server, monkeypatch, tmp_path: Path) -> None:
    url, served = server
    written = fx.write_cifar(tmp_path / "src" / "cifar-10-batches-py", seed=22)
    archive = served / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "src" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    res = download.Resource(
        archive.name, _md5(archive), (url + archive.name,), "cifar-10-batches-py/test_batch", extract=True
    )
    monkeypatch.setitem(download.RESOURCES, "cifar10", {"train": (res,), "test": (res,)})
    images, labels = data.load_dataset("cifar10", "train")
    np.testing.assert_array_equal(images, written["train"][0])
    folder = Path.home() / ".cache" / "bnn-flow" / "cifar10"
    assert sorted(p.name for p in folder.iterdir()) == ["cifar-10-batches-py"]  # archive and temp dir gone
    assert data.find_dataset("cifar10") == folder / "cifar-10-batches-py"


def test_offline_load_fails_fast_with_instructions(monkeypatch) -> None:
    port = _closed_port()
    dead = {
        split: tuple(
            download.Resource(r.filename, r.md5, (f"http://127.0.0.1:{port}/{r.filename}",), r.marker)
            for r in rs
        )
        for split, rs in download.RESOURCES["fashion-mnist"].items()
    }
    monkeypatch.setitem(download.RESOURCES, "fashion-mnist", dead)
    start = time.monotonic()
    with pytest.raises(DataNotFoundError) as err:
        data.load_dataset("fashion-mnist", "train")
    assert time.monotonic() - start < 10
    msg = str(err.value)
    assert "could not download train-images-idx3-ubyte.gz" in msg and "searched" in msg
    assert "fashion-mnist" in msg and "train-labels-idx1-ubyte.gz" in msg and "--data-dir" in msg
    assert not any((Path.home() / ".cache" / "bnn-flow" / "fashion-mnist").iterdir())


def test_resources_are_canonical() -> None:
    assert download.RESOURCES["cifar10"]["train"][0].md5 == "c58f30108f718f92721af3b95e74349a"
    for name, splits in download.RESOURCES.items():
        for resources in splits.values():
            for r in resources:
                assert len(r.md5) == 32 and all(u.startswith(("http://", "https://")) for u in r.urls), name


# ------------------------------------------------------------------------------ path-safe extraction


def _tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, payload in members:
            if payload is not None:
                info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload) if payload is not None else None)
    return path


def _file(name: str) -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), b"x"


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


@pytest.mark.parametrize(
    "members",
    [
        [_file("ok.txt"), _file("../evil.txt")],
        [_file("/tmp/abs-evil.txt")],
        [_file("sub/../../evil.txt")],
        [_link("link", "/etc")],
        [_link("link", "../../outside")],
        [_link("hard", "../evil.txt", tarfile.LNKTYPE)],
        [_link("fifo", "", tarfile.FIFOTYPE)],
    ],
    ids=[
        "dotdot",
        "absolute",
        "nested-dotdot",
        "abs-symlink",
        "escaping-symlink",
        "escaping-hardlink",
        "fifo",
    ],
)
def test_malicious_tar_rejected(tmp_path: Path, members) -> None:
    archive = _tar(tmp_path / "evil.tar.gz", members)
    target = tmp_path / "a" / "target"
    with pytest.raises(BadInputError, match="evil.tar.gz"):
        download.safe_extract(archive, target)
    assert list(target.iterdir()) == []  # nothing extracted, temporary folder removed
    assert not (tmp_path / "a" / "evil.txt").exists() and not (tmp_path / "evil.txt").exists()


def _zip(path: Path, names: list[str], symlink: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name in names:
            zf.writestr(name, b"x")
        if symlink is not None:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "../../outside")
    return path


@pytest.mark.parametrize(
    "names, symlink",
    [(["ok.txt", "../evil.txt"], None), (["/abs-evil.txt"], None), (["a\\..\\..\\evil.txt"], None),
     (["C:/evil.txt"], None), (["ok.txt"], "link")],
    ids=["dotdot", "absolute", "backslash", "drive", "symlink"],
)  # fmt: skip
def test_malicious_zip_rejected(tmp_path: Path, names: list[str], symlink: str | None) -> None:
    archive = _zip(tmp_path / "evil.zip", names, symlink)
    target = tmp_path / "a" / "target"
    with pytest.raises(BadInputError, match="evil.zip"):
        download.safe_extract(archive, target)
    assert list(target.iterdir()) == []
    assert not (tmp_path / "a" / "evil.txt").exists()


def test_benign_archives_extract_and_merge(tmp_path: Path) -> None:
    target = tmp_path / "t"
    tar = _tar(tmp_path / "ok.tar.gz", [_link("./", "", tarfile.DIRTYPE), _file("GTSRB/a/one.txt"),
                                        _link("GTSRB/a/alias", "one.txt")])  # fmt: skip
    download.safe_extract(tar, target)
    download.safe_extract(_zip(tmp_path / "ok.zip", ["GTSRB/b/two.txt", "GT.csv"]), target)
    assert (target / "GTSRB" / "a" / "one.txt").read_bytes() == b"x"
    assert (target / "GTSRB" / "a" / "alias").is_symlink()
    assert (target / "GTSRB" / "b" / "two.txt").is_file() and (target / "GT.csv").is_file()
    assert sorted(p.name for p in target.iterdir()) == ["GT.csv", "GTSRB"]  # merged, no temp folders left


def test_damaged_archive(tmp_path: Path) -> None:
    archive = tmp_path / "x.zip"
    archive.write_bytes(b"PK\x03\x04 nonsense")
    with pytest.raises(BadInputError, match="x.zip"):
        download.safe_extract(archive, tmp_path / "t")


def test_load_dataset_downloads_gtsrb_zips(server, monkeypatch, tmp_path: Path) -> None:
    """The three official zips as torchvision fetches them: GTSRB/ merged, GT-final_test.csv at the top."""
    url, served = server
    src = tmp_path / "src"
    specs = fx.write_gtsrb_official(src, seed=23, train_dir="GTSRB/Training")
    zips = {
        "train.zip": [p for p in src.rglob("*") if "Training" in p.parts],
        "test.zip": [p for p in src.rglob("*") if "Final_Test" in p.parts],
        "gt.zip": [src / "GT-final_test.csv"],
    }
    for name, files in zips.items():
        with zipfile.ZipFile(served / name, "w") as zf:
            for f in files:
                if f.is_file():
                    zf.write(f, f.relative_to(src).as_posix())

    def res(name: str, marker: str) -> download.Resource:
        return download.Resource(name, _md5(served / name), (url + name,), marker, extract=True)

    resources = {
        "train": (res("train.zip", "GTSRB/Training"),),
        "test": (res("test.zip", "GTSRB/Final_Test/Images"), res("gt.zip", "GT-final_test.csv")),
    }
    monkeypatch.setitem(download.RESOURCES, "gtsrb", resources)
    for split in ("train", "test"):
        images, labels = data.load_dataset("gtsrb", split, image_size=8)
        assert labels.tolist() == [s[2] for s in specs[split]]
        np.testing.assert_array_equal(images[0], fx.roi_crop(*specs[split][0][:2]))
    folder = Path.home() / ".cache" / "bnn-flow" / "gtsrb"
    assert sorted(p.name for p in folder.iterdir()) == ["GT-final_test.csv", "GTSRB"]
