"""Downloads from the canonical sources, with checksums, short timeouts and path-safe archive extraction.

URLs and MD5s are the ones torchvision uses (torchvision/datasets/{mnist,cifar,gtsrb}.py). A file is
streamed into a temporary sibling, its MD5 checked, and only then renamed into place, so an interrupted or
corrupted download never leaves a file that looks complete. Offline, the host name does not resolve or
the connection is refused, and we fail within seconds (DNS lookups get their own deadline, since socket
timeouts do not cover them). Archives are checked member by member before anything is written: absolute
names, ``..`` components, links that leave the target and device files are refused.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import socket
import stat
import tarfile
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from bnn_flow import __version__
from bnn_flow.data import paths
from bnn_flow.errors import BadInputError, DataNotFoundError
from bnn_flow.fileio import atomic_open

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5.0  # DNS and TCP connect: an offline machine must fail fast
READ_TIMEOUT_S = 30.0  # a stalled transfer, once connected (the GTSRB server is slow)
MAX_EXTRACT_BYTES = 8 << 30  # refuse archives that claim more than this (zip bombs)
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Resource:
    """One file to fetch: tried from each URL in turn; `marker` exists (relative to the data set's
    download folder) once the file is downloaded and, for archives, unpacked."""

    filename: str
    md5: str
    urls: tuple[str, ...]
    marker: str
    extract: bool = False


def _idx(mirrors: tuple[str, ...], filename: str, md5: str) -> Resource:
    return Resource(filename, md5, tuple(m + filename for m in mirrors), filename)


_MNIST = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")
# torchvision's mirror first; the second is the same files in Zalando's GitHub repository.
_FASHION = (
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
)
_CIFAR = Resource(
    "cifar-10-python.tar.gz",
    "c58f30108f718f92721af3b95e74349a",
    ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",),
    "cifar-10-batches-py/test_batch",
    extract=True,
)
_GTSRB = "https://sid.erda.dk/public/archives/daaeac0d7ce1152aea9b61d9f1e19370/"

RESOURCES: dict[str, dict[str, tuple[Resource, ...]]] = {
    "mnist": {
        "train": (
            _idx(_MNIST, "train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
            _idx(_MNIST, "train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
        ),
        "test": (
            _idx(_MNIST, "t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
            _idx(_MNIST, "t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
        ),
    },
    "fashion-mnist": {
        "train": (
            _idx(_FASHION, "train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
            _idx(_FASHION, "train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
        ),
        "test": (
            _idx(_FASHION, "t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
            _idx(_FASHION, "t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
        ),
    },
    "cifar10": {"train": (_CIFAR,), "test": (_CIFAR,)},
    "gtsrb": {
        "train": (
            Resource("GTSRB-Training_fixed.zip", "513f3c79a4c5141765e10e952eaa2478",
                     (_GTSRB + "GTSRB-Training_fixed.zip",), "GTSRB/Training", extract=True),
        ),
        "test": (
            Resource("GTSRB_Final_Test_Images.zip", "c7e4e6327067d32654124b0fe9e82185",
                     (_GTSRB + "GTSRB_Final_Test_Images.zip",), "GTSRB/Final_Test/Images", extract=True),
            Resource("GTSRB_Final_Test_GT.zip", "fe31e9c9270bbcd7b84b7f21a9d9d9e5",
                     (_GTSRB + "GTSRB_Final_Test_GT.zip",), "GT-final_test.csv", extract=True),
        ),
    },
}  # fmt: skip


class _DnsTimeout(OSError):
    """The resolver did not answer in time: the machine is most likely offline."""


def _resolve(host: str, port: int, timeout: float) -> None:
    """getaddrinfo with a deadline (it ignores socket timeouts and can block for 20+ s offline)."""
    result: list[BaseException | None] = []

    def lookup() -> None:
        try:
            socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            result.append(None)
        except OSError as exc:
            result.append(exc)

    thread = threading.Thread(target=lookup, daemon=True)  # daemon: a hung lookup must not block exit
    thread.start()
    thread.join(timeout)
    if not result:
        raise _DnsTimeout(f"no DNS answer for {host} within {timeout:.0f} s")
    if result[0] is not None:
        raise result[0]


def _set_read_timeout(response: object, seconds: float) -> None:
    """Relax the socket timeout after connecting: urllib has one timeout for connect and reads, and we
    want connect short but tolerate a slow server. Best effort, through http.client internals."""
    sock = getattr(getattr(getattr(response, "fp", None), "raw", None), "_sock", None)
    if isinstance(sock, socket.socket):
        sock.settimeout(seconds)


def _fetch_url(url: str, dest: Path, md5: str, connect_timeout: float, read_timeout: float) -> None:
    """Stream `url` into `dest` atomically; raise ValueError on an MD5 mismatch (nothing is left behind)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"unsupported URL {url}")
    _resolve(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80), connect_timeout)
    request = urllib.request.Request(url, headers={"User-Agent": f"bnn-flow/{__version__}"})
    log.info("downloading %s -> %s", url, dest)
    with urllib.request.urlopen(request, timeout=connect_timeout) as response:
        _set_read_timeout(response, read_timeout)
        digest = hashlib.md5(usedforsecurity=False)  # MD5 only because the published checksums are MD5
        with atomic_open(dest, "wb") as out:
            while chunk := response.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
            if digest.hexdigest() != md5:
                raise ValueError(f"checksum mismatch: md5 {digest.hexdigest()}, expected {md5}")


def download_file(
    urls: tuple[str, ...] | list[str],
    dest: Path,
    md5: str,
    *,
    connect_timeout: float = CONNECT_TIMEOUT_S,
    read_timeout: float = READ_TIMEOUT_S,
) -> Path:
    """Download `dest` from the first URL that works and whose content has the given MD5.

    Raises DataNotFoundError (one line, with every URL's failure) when none does.
    """
    errors: list[str] = []
    for url in urls:
        try:
            _fetch_url(url, dest, md5, connect_timeout, read_timeout)
            return dest
        except _DnsTimeout as exc:  # offline: the other mirrors would time out too
            errors.append(f"{url}: {exc}")
            break
        except (OSError, ValueError, urllib.error.URLError) as exc:
            reason = getattr(exc, "reason", None) or exc
            errors.append(f"{url}: {reason}")
    name = urllib.parse.urlsplit(urls[0]).path.rsplit("/", 1)[-1] if urls else dest.name
    raise DataNotFoundError(f"could not download {name} ({'; '.join(errors)})")


def _check_name(name: str, archive: Path, target: Path) -> None:
    """Refuse member names that are absolute, climb with '..', or resolve outside `target`."""
    posix = name.replace("\\", "/")  # a Windows-made archive may use backslashes
    pure = PurePosixPath(posix)
    if pure.is_absolute() or re.match(r"^[A-Za-z]:", posix) or ".." in pure.parts:
        raise BadInputError(f"{archive}: refusing unsafe member path {name!r} (absolute or '..')")
    if not _inside(target / posix, target):
        raise BadInputError(f"{archive}: member {name!r} would be written outside {target}")


def _inside(path: Path | str, target: Path) -> bool:
    """True if `path`, normalised lexically, lies within `target` (neither needs to exist)."""
    root = os.path.normpath(os.path.abspath(target))
    full = os.path.normpath(os.path.abspath(path))
    return full == root or full.startswith(root + os.sep)


def _check_tar(tar: tarfile.TarFile, archive: Path, target: Path) -> None:
    total = 0
    for m in tar.getmembers():
        _check_name(m.name, archive, target)
        if m.issym():
            link = os.path.join(os.path.dirname(os.path.join(target, m.name)), m.linkname)
            if os.path.isabs(m.linkname) or not _inside(link, target):
                raise BadInputError(f"{archive}: symlink {m.name!r} -> {m.linkname!r} leaves the target")
        elif m.islnk():
            if os.path.isabs(m.linkname) or not _inside(os.path.join(target, m.linkname), target):
                raise BadInputError(f"{archive}: hard link {m.name!r} -> {m.linkname!r} leaves the target")
        elif not (m.isfile() or m.isdir()):
            raise BadInputError(f"{archive}: refusing special file {m.name!r} (device or FIFO)")
        total += m.size
    _check_total(total, archive)


def _check_total(total: int, archive: Path) -> None:
    if total > MAX_EXTRACT_BYTES:
        raise BadInputError(f"{archive}: unpacks to {total} bytes, more than the {MAX_EXTRACT_BYTES} allowed")


def _check_zip(zf: zipfile.ZipFile, archive: Path, target: Path) -> None:
    total = 0
    for info in zf.infolist():
        _check_name(info.filename, archive, target)
        if stat.S_ISLNK(info.external_attr >> 16):  # no canonical data set zip holds links
            raise BadInputError(f"{archive}: refusing symbolic link {info.filename!r} in a zip archive")
        total += info.file_size
    _check_total(total, archive)


def _merge_move(src: Path, dst: Path) -> None:
    """Move the contents of `src` into `dst`, merging folders that exist in both (e.g. GTSRB/)."""
    for item in src.iterdir():
        target = dst / item.name
        if item.is_dir() and not item.is_symlink() and target.is_dir():
            _merge_move(item, target)
        else:
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            os.replace(item, target)


def safe_extract(archive: Path, target: Path) -> None:
    """Unpack a .tar[.gz|.bz2|.xz] or .zip `archive` into `target` after checking every member.

    Members are unpacked into a temporary folder inside `target` and moved into place afterwards, so an
    interrupted extraction leaves no half-filled data folder.
    """
    archive, target = Path(archive), Path(target)
    target.mkdir(parents=True, exist_ok=True)
    is_zip = zipfile.is_zipfile(archive)
    if not is_zip and not tarfile.is_tarfile(archive):
        raise BadInputError(f"{archive}: neither a tar nor a zip archive")
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=target))
    try:
        if is_zip:
            with zipfile.ZipFile(archive) as zf:
                _check_zip(zf, archive, tmp)
                zf.extractall(tmp)
        else:
            with tarfile.open(archive) as tar:
                _check_tar(tar, archive, tmp)
                tar.extractall(tmp, filter="data")  # the stdlib's own checks, as a second line of defence
        _merge_move(tmp, target)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError) as exc:
        raise BadInputError(f"{archive}: damaged archive ({exc}); delete it and download it again") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def fetch(name: str, split: str, dest: Path | None = None) -> Path:
    """Download (and unpack) what data set `name` needs for `split` into `dest`; return `dest`.

    `dest` defaults to ``~/.cache/bnn-flow/<name>/``. Files already in place are not fetched again.
    Processes fetching at once (DDP ranks) do not corrupt files (atomic renames, a private copy of each
    archive per process), but they do fetch twice: let one rank load the data first.
    """
    if name not in RESOURCES:
        raise DataNotFoundError(f"{name} has no download source; place its files by hand")
    dest = dest if dest is not None else paths.download_dir(name)
    dest.mkdir(parents=True, exist_ok=True)
    for res in RESOURCES[name][split]:
        if (dest / res.marker).exists():
            continue
        if not res.extract:
            download_file(res.urls, dest / res.filename, res.md5)
            continue
        archive = dest / f".{res.filename}.{os.getpid()}"
        try:
            safe_extract(download_file(res.urls, archive, res.md5), dest)
        finally:
            archive.unlink(missing_ok=True)  # the unpacked files are what we load; keep the cache small
    return dest
