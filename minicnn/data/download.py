"""Fetching dataset files: mirrors tried in order, retries, MD5 checks, atomic writes, safe extraction.

Nothing is ever half-written: every file is streamed into a temporary file in the destination folder and renamed
into place only once it is complete and its checksum matches; archives are unpacked into a temporary folder that
is renamed into place at the end.  A crash leaves the old state or the new one.
"""
import hashlib
import os
import shutil
import tarfile
import tempfile
import time
import urllib.error
import urllib.request

from tqdm import tqdm

from minicnn.serialization import publish

__all__ = ["md5_file", "download_url", "extract_archive", "DownloadError"]

RETRIES = 3                  # attempts per mirror for transient failures (timeouts, cut connections, bad checksums)
RETRY_DELAY = 1.0            # seconds before the 2nd attempt, doubled each time (tests set 0)
TIMEOUT = 30                 # seconds without data before an attempt is abandoned
CHUNK = 1 << 20


class DownloadError(RuntimeError):
    """Every mirror failed for one file; the message lists each attempt and says what to do."""


def md5_file(path, chunk=CHUNK):
    """MD5 hex digest of the file at ``path`` (integrity, not security)."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def _fetch(url, out, desc):
    """Stream ``url`` into the open binary file ``out``; a body shorter than its Content-Length is an error."""
    with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
        total = response.headers.get("Content-Length")
        total = int(total) if total is not None else None
        got = 0
        with tqdm(total=total, unit="B", unit_scale=True, desc=desc, leave=False, disable=None) as bar:
            for block in iter(lambda: response.read(CHUNK), b""):
                out.write(block)
                got += len(block)
                bar.update(len(block))
    if total is not None and got != total:
        raise OSError(f"connection closed after {got} of {total} bytes")


def download_url(urls, path, md5=None):
    """Download the first of ``urls`` that delivers a complete file (with MD5 ``md5`` if given) to ``path``.

    Mirrors are tried in order; on each, transient failures are retried ``RETRIES`` times with exponential
    back-off, while an HTTP 4xx (the mirror lacks the file) moves straight on to the next mirror.
    Returns ``path``.  Raises ``DownloadError`` naming the file, every failed attempt and the manual way out.
    """
    urls = [urls] if isinstance(urls, str) else list(urls)
    folder, name = os.path.split(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    failures = []
    for url in urls:
        for attempt in range(RETRIES):
            if attempt:
                time.sleep(RETRY_DELAY * 2 ** (attempt - 1))
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=folder)
            try:
                with os.fdopen(fd, "wb") as out:
                    _fetch(url, out, desc=name)
                if md5 is not None and (got := md5_file(tmp)) != md5:
                    raise OSError(f"MD5 {got} does not match the published {md5}")
                publish(tmp, path)
                return path
            except urllib.error.HTTPError as e:
                failures.append(f"{url}: HTTP {e.code} {e.reason}")
                if 400 <= e.code < 500:
                    break                          # this mirror does not have it: try the next one
            except (urllib.error.URLError, OSError, ValueError) as e:
                failures.append(f"{url}: {getattr(e, 'reason', None) or e}")
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
    raise DownloadError(f"could not download {name}; tried:\n  " + "\n  ".join(failures) +
                        f"\nCheck the network connection, or download the file by hand to {path}"
                        + (f" (MD5 {md5})" if md5 else ""))


def _check_members(tar, archive):
    """Refuse anything but plain files and folders inside the destination (no links, devices, '..' paths)."""
    for m in tar.getmembers():
        parts = m.name.replace("\\", "/").split("/")
        if m.name.startswith("/") or ".." in parts or not (m.isfile() or m.isdir()):
            raise ValueError(f"{archive}: refusing unsafe archive member {m.name!r}")


def extract_archive(archive, dest):
    """Unpack the ``.tar.gz`` at ``archive`` into the folder ``dest``; each top-level entry appears atomically.

    The archive is unpacked into a temporary folder inside ``dest``; then each top-level entry replaces any
    older one of that name.  A corrupt archive raises an error naming it and leaves ``dest`` as it was.
    """
    os.makedirs(dest, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".extract-", dir=dest)
    try:
        try:
            with tarfile.open(archive, "r:gz") as tar:
                _check_members(tar, archive)
                if hasattr(tarfile, "data_filter"):
                    tar.extractall(staging, filter="data")
                else:                              # pragma: no cover - Python < 3.11.4
                    tar.extractall(staging)
        except (tarfile.TarError, EOFError, OSError) as e:
            raise ValueError(f"{archive} is corrupt or truncated ({e}); delete it and download it again") from None
        for entry in os.listdir(staging):
            target = os.path.join(dest, entry)
            if os.path.isdir(target):
                old = tempfile.mkdtemp(prefix=".old-", dir=dest)
                os.replace(target, os.path.join(old, entry))
                os.replace(os.path.join(staging, entry), target)
                shutil.rmtree(old)
            else:
                os.replace(os.path.join(staging, entry), target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest
