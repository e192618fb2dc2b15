"""``python -m ecg_data download NAME --root DIR``: fetch a real dataset, verified against the publisher's checksums.

Built on pooch (hash checking, one retry, atomic moves) with a downloader of our own that resumes a partial file
with an HTTP ``Range`` request and feeds one progress bar (files, bytes, ETA) shared by ``--jobs`` threads.

- Checksums: the publisher's list (PhysioNet ``SHA256SUMS.txt``; Zenodo's md5 per file, kept as ``md5sums.txt``)
  is fetched first and kept under the root. A file whose checksum fails is downloaded once more, then refused
  with an error naming it.
- Resumable: partial files (``.<name>.part``) continue where they stopped; a verified file is never fetched again
  (``<root>/.ecg_data/verified.jsonl`` remembers size, mtime and checksum, so a rerun does not rehash either).
- ``--records published|all|N``: the records of the published split files (every record where a dataset has none),
  every record, or the first N (metadata files always come).
- Credentials only from ``$PHYSIONET_USERNAME``/``$PHYSIONET_PASSWORD`` or ``~/.netrc``; a 401/403 is one line.
- Nothing is written outside ``--root``; free space is checked against the estimate before anything starts.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import threading
import time
import zipfile
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pooch
import requests
from tqdm import tqdm

from ecg_data.paths import atomic_path, atomic_write_text
from ecg_data.record import ECGDataError
from ecg_data.sources import CONFIRM_BYTES, CREDENTIAL_ENV, GB, Source, algorithm, get_source, parse_checksums

log = logging.getLogger(__name__)

STATE_DIR = ".ecg_data"
STATE_FILE = "verified.jsonl"
BATCH = 2000  # files submitted to the thread pool at a time
CHUNK = 1 << 14  # a dropped connection loses at most the chunk in flight


class DownloadError(ECGDataError):
    """A download could not complete (names the file or address and says what to do)."""


class AccessDeniedError(DownloadError):
    """The server answered 401/403."""


class ChecksumError(DownloadError):
    """A file failed its published checksum twice."""


@dataclass(frozen=True, slots=True)
class Entry:
    remote: str  # path in the publisher's directory
    local: str  # path under root
    digest: str  # "sha256:<hex>" / "md5:<hex>"
    record: str | None  # record id (None: a metadata file)
    url: str


# -- planning -------------------------------------------------------------------------------------------------
def base_url(source: Source, mirror: str | None) -> str:
    if mirror:
        return mirror if mirror.endswith("/") else mirror + "/"
    return source.url


def credentials() -> tuple[str, str] | None:
    user, password = (os.environ.get(k) for k in CREDENTIAL_ENV)
    return (user, password) if user and password else None


def _access_message(source: Source, url: str, status: int) -> str:
    host = urlparse(url).hostname or "physionet.org"
    return (
        f"{url} answered {status}: {source.title} needs credentials that this machine lacks or that are refused. "
        f"Put your login in ~/.netrc (machine {host} login USER password PASS) or set "
        f"{' and '.join(CREDENTIAL_ENV)}, and accept the data use agreement at {source.page}"
    )


def http_get(session: requests.Session, source: Source, url: str, *, wrap: bool = True, **kw: Any) -> requests.Response:
    """GET with the project's errors for the answers a user can act on (``wrap=False``: connection errors stay
    requests' own, so that the caller retries them)."""
    try:
        r = session.get(url, timeout=kw.pop("timeout", 60), auth=credentials(), **kw)
    except requests.exceptions.RequestException as e:
        if not wrap:
            raise
        raise DownloadError(f"cannot reach {url}: {type(e).__name__}: {e}") from e
    if r.status_code in (401, 403):
        r.close()
        raise AccessDeniedError(_access_message(source, url, r.status_code))
    if r.status_code == 404:
        r.close()
        raise DownloadError(
            f"{url} answered 404 (not found): the server (or --mirror) does not hold this file of "
            f"{source.title} {source.release}; check the address"
        )
    return r


def fetch_checksums(
    source: Source, root: Path, mirror: str | None, session: requests.Session
) -> tuple[str, dict[str, str] | None]:
    """The publisher's checksum list as text (saved under root, atomically), and the files' addresses when the
    publisher names them (Zenodo; else None: ``<base>/<path>``)."""
    base = base_url(source, mirror)
    urls = None
    if source.host == "zenodo" and not mirror:
        doi = source.url.removeprefix("doi:")
        reg = pooch.create(path=root, base_url=f"{source.url}/", registry=None)
        try:  # pooch resolves the DOI and reads the record's file list and md5 checksums from Zenodo's API
            repo = pooch.downloaders.doi_to_repository(doi)
            repo.populate_registry(reg)
            urls = {k: repo.download_url(k) for k in reg.registry}
        except Exception as e:  # pooch raises ValueError / requests errors of its own; one line for the user
            raise DownloadError(f"cannot read the file list and md5 checksums of {source.url} from Zenodo: {e}") from e
        text = "".join(f"{h.split(':', 1)[1]}  {k}\n" for k, h in reg.registry.items())
    else:
        url = base + source.checksums
        r = http_get(session, source, url)
        if r.status_code >= 400:
            raise DownloadError(f"{url} answered {r.status_code}; cannot read the checksum list")
        text = r.text
    parse_checksums(text, where=base + source.checksums)  # refuse a malformed list before writing it
    atomic_write_text(root / source.checksums, text)
    return text, urls


def entries_from(source: Source, text: str, where: str) -> list[Entry]:
    out = []
    for remote, hexd in parse_checksums(text, where=where):
        local = source.local_path(remote)
        if local is None or local == source.checksums:
            continue
        out.append(Entry(remote, local, f"{algorithm(hexd)}:{hexd}", source.record_of(local), ""))
    return out


def published_records(source: Source) -> set[str] | None:
    """Record ids of every published split of this dataset's tasks; None when it has no published split."""
    from ecg_data.tasks import TASKS, published_split

    ids: set[str] = set()
    names = {TASKS.get(n).published for n in TASKS.names() if TASKS.get(n).data_dir == source.data_dir}
    names.discard(None)
    for n in names:
        for split in published_split(n).values():
            ids.update(split)
    return ids or None


def first_records(source: Source, root: Path, entries: list[Entry], n: int) -> set[str]:
    """The first N records: CODE-15% in ``exams.csv`` order (a part archive per exam), else in the listing's order."""
    if source.name == "code15":
        import pandas as pd

        exams = pd.read_csv(root / "exams.csv", usecols=["trace_file"], nrows=n)
        return {str(t).removesuffix(".hdf5") for t in exams["trace_file"]}
    out: dict[str, None] = {}
    for e in entries:
        if e.record is not None and e.record not in out:
            out[e.record] = None
            if len(out) == n:
                break
    return set(out)


def select(source: Source, root: Path, entries: list[Entry], records: str) -> list[Entry]:
    meta = [e for e in entries if e.record is None]
    if records == "all":
        return entries
    if records == "published":
        wanted = published_records(source)
        if wanted is None:
            return entries
    else:
        try:
            n = int(records)
        except ValueError:
            raise ValueError(f"--records {records!r}: expected 'published', 'all' or a number of records") from None
        if n < 1:
            raise ValueError(f"--records {n}: a trial needs at least 1 record")
        wanted = first_records(source, root, entries, n)
    return meta + [e for e in entries if e.record is not None and e.record in wanted]


def estimate_bytes(source: Source, chosen: list[Entry]) -> int:
    """Bytes these files need once on disk: the dataset's estimate per record (unit) times the records chosen."""
    rec = len({e.record for e in chosen if e.record is not None})
    per = (source.bytes_estimate + source.unpacked_bytes) / source.n_units
    return int(per * rec) + 10_000_000  # metadata files


# -- the verified-file state -----------------------------------------------------------------------------------
class State:
    """``<root>/.ecg_data/verified.jsonl``: one ``[local path, size, mtime_ns, digest]`` line per file that passed its
    checksum, appended as files finish (O(1) per file even for MIMIC-IV-ECG's 1.6 million; a line torn by a kill is
    ignored on read, and its file is hashed again, never downloaded again)."""

    def __init__(self, root: Path) -> None:
        self.path = root / STATE_DIR / STATE_FILE
        self.lock = threading.Lock()
        self.data = read_state(root)
        self._fh: Any = None

    def verified(self, root: Path, e: Entry) -> bool:
        got = self.data.get(e.local)
        if not got or got[2] != e.digest:
            return False
        try:
            st = (root / e.local).stat()
        except OSError:
            return False
        return got[0] == st.st_size and got[1] == st.st_mtime_ns

    def add(self, root: Path, e: Entry) -> None:
        st = (root / e.local).stat()
        row = [st.st_size, st.st_mtime_ns, e.digest]
        with self.lock:
            self.data[e.local] = row
            if self._fh is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed by close()
            self._fh.write(json.dumps([e.local, *row]) + "\n")
            self._fh.flush()

    def close(self) -> None:
        with self.lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None


def read_state(root: Path) -> dict[str, list[Any]]:
    """local path -> [size, mtime_ns, digest] of the files a download verified (the last line of a path wins)."""
    p = root / STATE_DIR / STATE_FILE
    out: dict[str, list[Any]] = {}
    try:
        lines = p.read_text(encoding="utf-8").splitlines() if p.is_file() else []
    except OSError:
        return out
    for line in lines:
        try:
            local, size, mtime, digest = json.loads(line)
        except (ValueError, TypeError):
            continue  # a line torn by a kill
        out[str(local)] = [size, mtime, digest]
    return out


# -- the downloader pooch calls -----------------------------------------------------------------------------------
class Progress:
    """One bar for the whole run: bytes (with rate and ETA) and files done."""

    def __init__(self, total_bytes: int, n_files: int, enabled: bool) -> None:
        self.bar = tqdm(
            total=total_bytes,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            disable=not enabled,
            desc="download",
            dynamic_ncols=True,
            file=sys.stderr,
        )
        self.n_files, self.done = n_files, 0
        self.lock = threading.Lock()
        self._set_postfix()

    def _set_postfix(self) -> None:
        self.bar.set_postfix_str(f"files {self.done}/{self.n_files}", refresh=False)

    def bytes(self, n: int) -> None:
        with self.lock:
            self.bar.update(n)

    def file_done(self) -> None:
        with self.lock:
            self.done += 1
            self._set_postfix()

    def close(self, finished: bool = False) -> None:
        if finished:  # the total was an estimate: end the bar at what actually came
            self.bar.total = self.bar.n
            self.bar.refresh()
        self.bar.close()


class ResumableDownloader:
    """pooch downloader: streams into ``.<name>.part`` beside the target, continuing it with ``Range``."""

    def __init__(
        self, source: Source, session: requests.Session, part: Path, progress: Progress, timeout: float
    ) -> None:
        self.source, self.session, self.part, self.progress, self.timeout = source, session, part, progress, timeout

    def __call__(self, url: str, output_file: Any, pooch_obj: Any = None) -> None:
        have = self.part.stat().st_size if self.part.is_file() else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        r = http_get(self.session, self.source, url, wrap=False, headers=headers, stream=True, timeout=self.timeout)
        with r:
            if r.status_code == 416:  # the part is already whole: let the checksum decide
                pass
            else:
                r.raise_for_status()  # a requests error: pooch retries once, then the caller resumes
                append = have > 0 and r.status_code == 206
                if have and not append:
                    self.progress.bytes(-have)  # the server ignored Range: start over
                with open(self.part, "ab" if append else "wb") as f:
                    for chunk in r.iter_content(CHUNK):
                        f.write(chunk)
                        self.progress.bytes(len(chunk))
        os.replace(self.part, str(output_file))


# -- the run ---------------------------------------------------------------------------------------------------------
def _free_bytes(root: Path) -> int:
    p = root
    while not p.exists():
        p = p.parent
    return shutil.disk_usage(p).free


def _confirm(question: str) -> bool:
    if not sys.stdin or not sys.stdin.isatty():
        return False
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def _fetch_one(
    e: Entry,
    root: Path,
    source: Source,
    state: State,
    progress: Progress,
    session_for: Callable[[], requests.Session],
    retries: int,
    timeout: float,
) -> str:
    target = root / e.local
    part = target.with_name(f".{target.name}.part")
    target.parent.mkdir(parents=True, exist_ok=True)  # pooch's own makedirs races between threads
    reg = pooch.create(path=root, base_url="", registry={e.local: e.digest}, urls={e.local: e.url}, retry_if_failed=1)
    for attempt in range(retries + 1):
        try:
            reg.fetch(e.local, downloader=ResumableDownloader(source, session_for(), part, progress, timeout))
            break
        except requests.exceptions.RequestException as err:  # connection dropped: the part is kept, resume
            if attempt == retries:
                raise DownloadError(
                    f"{e.local}: download failed {retries + 1} times ({type(err).__name__}: {err}); "
                    f"rerun the same command to continue where it stopped"
                ) from err
            time.sleep(min(2**attempt, 10) * 0.5)
        except ValueError as err:  # pooch: the checksum failed on both downloads
            raise ChecksumError(
                f"{e.local}: checksum does not match the published {e.digest.split(':')[0]} "
                f"after a second download ({e.url}); refused. The server holds a different file "
                f"than the publisher listed"
            ) from err
    state.add(root, e)
    if source.unzip and target.suffix == ".zip":
        unpack(target)
    progress.file_done()
    return e.local


def unpack(archive: Path) -> list[Path]:
    """Unpack a verified archive beside itself, each member atomically (skipped when already unpacked whole)."""
    out = []
    with zipfile.ZipFile(archive) as z:
        for info in z.infolist():
            if info.is_dir():
                continue
            dest = archive.parent / Path(info.filename).name
            if dest.is_file() and dest.stat().st_size == info.file_size:
                out.append(dest)
                continue
            with atomic_path(dest) as tmp, z.open(info) as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst, CHUNK * 16)
            out.append(dest)
    return out


@dataclass
class Summary:
    dataset: str
    root: Path
    n_files: int
    n_downloaded: int
    n_already: int
    bytes_estimate: int
    seconds: float


def download(
    name: str,
    root: str | Path,
    *,
    records: str = "published",
    mirror: str | None = None,
    jobs: int = 4,
    yes: bool = False,
    retries: int = 3,
    timeout: float = 60.0,
    progress: bool = True,
) -> Summary:
    """Download (or complete) one dataset under ``root``; see the module docstring."""
    source = get_source(name)
    root = Path(root).expanduser().resolve()
    if root.exists() and not root.is_dir():
        raise DownloadError(f"--root {root} exists and is not a directory")
    if jobs < 1:
        raise ValueError(f"--jobs {jobs}: needs at least 1")
    if records not in ("all", "published") and not (records.isdigit() and int(records) > 0):
        raise ValueError(f"--records {records!r}: expected 'published', 'all' or a number of records (at least 1)")
    pooch.get_logger().setLevel(logging.WARNING)  # its own logger, not logging.getLogger("pooch")
    t0 = time.monotonic()
    local = threading.local()

    def session_for() -> requests.Session:
        if not hasattr(local, "s"):
            local.s = requests.Session()
        return local.s

    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DownloadError(f"--root {root}: cannot create it ({e.strerror})") from e
    text, urls = fetch_checksums(source, root, mirror, session_for())
    base = base_url(source, mirror)
    entries = entries_from(source, text, base + source.checksums)
    if not entries:
        raise DownloadError(
            f"the checksum list of {source.title} names no file of this dataset"
            f"{' under ' + source.subtree if source.subtree else ''}"
        )
    entries = [
        Entry(e.remote, e.local, e.digest, e.record, urls[e.remote] if urls else base + e.remote) for e in entries
    ]
    state = State(root)
    meta = [e for e in entries if e.record is None]
    bar_meta = Progress(0, 0, enabled=False)
    if records not in ("all", "published") and source.name == "code15":  # exams.csv decides the first N exams
        for e in meta:
            if not state.verified(root, e):
                _fetch_one(e, root, source, state, bar_meta, session_for, retries, timeout)
    chosen = select(source, root, entries, records)
    todo = [e for e in chosen if not state.verified(root, e)]
    need = estimate_bytes(source, todo) if todo else 0
    free = _free_bytes(root)
    if need > free:
        raise DownloadError(
            f"{source.title}: about {need / GB:.1f} GB to download (an estimate: {source.size_basis}) "
            f"but only {free / GB:.1f} GB free under {root}; free space or choose another --root"
        )
    if (
        need > CONFIRM_BYTES
        and not yes
        and not _confirm(f"{source.title}: download about {need / GB:.0f} GB into {root}?")
    ):
        raise DownloadError(
            f"{source.title}: about {need / GB:.0f} GB to download; pass --yes to confirm (or --records N for a trial)"
        )
    log.info(
        "%s: %d of %d selected files to fetch (about %.2f GB) into %s",
        source.name,
        len(todo),
        len(chosen),
        need / GB,
        root,
    )
    bar = Progress(need, len(todo), enabled=progress)
    finished = False
    try:
        # metadata first (the readers need them whatever else arrives)
        for group in ([e for e in todo if e.record is None], [e for e in todo if e.record is not None]):
            if not group:
                continue
            with ThreadPoolExecutor(max_workers=jobs) as pool:
                for i in range(0, len(group), BATCH):  # bounded: MIMIC-IV-ECG lists 1.6 million files
                    futs = [
                        pool.submit(_fetch_one, e, root, source, state, bar, session_for, retries, timeout)
                        for e in group[i : i + BATCH]
                    ]
                    done, pending = wait(futs, return_when=FIRST_EXCEPTION)
                    failed = [f for f in done if f.exception() is not None]
                    if failed:
                        for f in pending:
                            f.cancel()
                        pool.shutdown(wait=True, cancel_futures=True)
                        raise failed[0].exception()  # type: ignore[misc]
        finished = True
    finally:
        bar.close(finished)
        state.close()
    if source.unzip:  # archives verified by an earlier run but never unpacked (killed in between)
        for e in chosen:
            if e.local.endswith(".zip") and (root / e.local).is_file():
                unpack(root / e.local)
    return Summary(source.name, root, len(chosen), len(todo), len(chosen) - len(todo), need, time.monotonic() - t0)
