"""Page backups as WARC files: one per site and day, every request/response pair in it.

WARC 1.1 (ISO 28500), written with warcio: a ``warcinfo`` record first, then a request and a
response record for every HTTP exchange the crawler completed (retried errors and redirect
hops included), each record gzipped on its own so standard tools can seek in the file. The
file is written under a temporary name and renamed into place only when the crawl finished,
so a job killed mid-crawl never leaves a backup that looks complete; its sha256 is recorded
beside it first (``tasks/checksums.py``), so later damage is found, not read. Processing reads
pages back from here, not from the live site, which is what makes a reprocess after a
selector fix possible.

Bodies are stored as received (a gzip-encoded page stays gzip, with its Content-Encoding
header); reading them back undoes the encoding within ``politeness.max_decoded_bytes``, so
a gzip bomb in a backup fails its page instead of the worker reading it.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from infra.atomic import fsync_directory
from sites.loader import Politeness
from tasks.checksums import BackupDamaged, damage, file_digest, record_digest, recorded_digest
from tasks.politeness import Exchange, UndecodableBody, decode_content

KIND_HEADER = "X-Auction-Pipeline-Kind"
# The body is stored after transfer decoding (httpx does not expose the wire bytes), so
# headers describing the wire framing would be wrong for it: they are replaced.
FRAMING_HEADERS = {"transfer-encoding", "content-length"}


class WarcRecorder:
    """Writes one site-day WARC file; the file appears under its name only on success.

    A crawl that fails leaves its exchanges as ``<name>.failed`` for whoever investigates;
    no reader (reuse, reprocess, archive) takes such a file for a backup.
    """

    def __init__(self, path: Path, info: dict[str, str]):
        self.path = path
        self.info = info
        self.exchanges = 0
        self._lock = threading.Lock()  # fetch threads share one file
        self._tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.partial")
        self._file: BinaryIO | None = None
        self._writer: Any = None

    def __enter__(self) -> WarcRecorder:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One crawl per site and day at a time: a partial file here is what an attempt killed
        # mid-crawl (walltime, scancel, lost node) left behind, and its task is being redone.
        for stale in self.path.parent.glob(f".{self.path.name}.*.partial"):
            stale.unlink(missing_ok=True)
        self._file = open(self._tmp, "wb")
        self._writer = WARCWriter(self._file, gzip=True, warc_version="WARC/1.1")
        self._writer.write_record(self._writer.create_warcinfo_record(self.path.name, self.info))
        return self

    def record(self, exchange: Exchange) -> None:
        """Append the exchange as a request/response record pair."""
        writer = self._writer
        date = datetime.fromtimestamp(exchange.fetched_at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        parts = urlsplit(exchange.url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        request = writer.create_warc_record(
            exchange.url,
            "request",
            payload=io.BytesIO(b""),
            http_headers=StatusAndHeaders(
                f"GET {target or '/'} HTTP/1.1",
                exchange.request_headers,
                is_http_request=True,
            ),
            warc_headers_dict={"WARC-Date": date, KIND_HEADER: exchange.kind},
        )
        headers = [(k, v) for k, v in exchange.response_headers if k.lower() not in FRAMING_HEADERS]
        headers.append(("Content-Length", str(len(exchange.body))))
        response = writer.create_warc_record(
            exchange.url,
            "response",
            payload=io.BytesIO(exchange.body),
            length=len(exchange.body),
            http_headers=StatusAndHeaders(
                f"{exchange.status} {exchange.reason}", headers, protocol="HTTP/1.1"
            ),
            warc_headers_dict={"WARC-Date": date, KIND_HEADER: exchange.kind},
        )
        with self._lock:
            try:
                writer.write_request_response_pair(request, response)
            except OSError as exc:  # a full disk or quota: name the file, keep the errno
                raise OSError(
                    exc.errno, f"cannot write the page backup {self._tmp}: {exc.strerror}"
                ) from exc
            self.exchanges += 1

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._file is not None
        try:
            self._close(failed=exc_type is not None)
            if exc_type is None:
                self._publish()
            else:
                self._keep_failed()
        finally:
            self._tmp.unlink(missing_ok=True)

    def _close(self, failed: bool) -> None:
        """Flush (when the crawl succeeded), sync and close the file being written."""
        assert self._file is not None
        try:
            if not failed:
                self._file.flush()
                os.fsync(self._file.fileno())
            self._file.close()  # closes the file even when its last flush fails
        except OSError as error:
            if not failed:
                raise OSError(
                    error.errno, f"cannot write the page backup {self._tmp}: {error.strerror}"
                ) from error
            # The crawl failed already (often for this very reason, a full disk): its
            # error is the one to report, not this echo of it.

    def _publish(self) -> None:
        """The complete file under its name; its digest first, so a WARC under its final
        name always has one to check."""
        record_digest(self._tmp, file_digest(self._tmp), self.path.name)
        os.replace(self._tmp, self.path)
        fsync_directory(self.path.parent)

    def _keep_failed(self) -> None:
        """Evidence of what the site answered, under a name nothing reads as a backup."""
        os.replace(self._tmp, self.path.with_name(self.path.name + ".failed"))


class AppendingRecorder(WarcRecorder):
    """A new version of an existing site-day WARC: the old file's records byte for byte, then
    a warcinfo record and the new exchanges (``auction-pipeline lot`` on a crawled day).

    It replaces the old file only when complete: the new file, then its digest, each renamed
    into place. On any failure before that the old WARC and its digest are left as they were,
    and nothing of the attempt is kept. (A kill between the two renames leaves the new WARC
    with the old digest: reported as damaged by every reader, with the bag's copy of the old
    one as the restore hint, which matches that digest again. The other order would flag the
    intact old file instead.)
    """

    def __init__(self, path: Path, info: dict[str, str], hint: str):
        super().__init__(path, info)
        self._hint = hint

    def __enter__(self) -> AppendingRecorder:
        for stale in self.path.parent.glob(f".{self.path.name}.*.partial"):
            stale.unlink(missing_ok=True)  # a killed attempt's; the caller holds the day's lock
        self._file = open(self._tmp, "wb")
        try:
            self._copy_old(self._file)
        except BaseException:
            self._file.close()
            self._tmp.unlink(missing_ok=True)
            raise
        self._writer = WARCWriter(self._file, gzip=True, warc_version="WARC/1.1")
        self._writer.write_record(self._writer.create_warcinfo_record(self.path.name, self.info))
        return self

    def _copy_old(self, target: BinaryIO) -> None:
        """Copy the old file, checking what was copied against its recorded digest (so a
        file changed since it was checked is refused, not extended)."""
        expected = recorded_digest(self.path)
        digest = hashlib.sha256()
        with open(self.path, "rb") as old:
            while chunk := old.read(1 << 20):
                digest.update(chunk)
                target.write(chunk)
        if expected is not None and digest.hexdigest() != expected:
            raise BackupDamaged(f"{damage(self.path, digest.hexdigest())}; {self._hint}")

    def _publish(self) -> None:
        digest = file_digest(self._tmp)
        os.replace(self._tmp, self.path)
        fsync_directory(self.path.parent)
        record_digest(self.path, digest)

    def _keep_failed(self) -> None:
        """Nothing: the old WARC is the day's backup still, and the attempt is deleted."""


DEFAULT_MAX_DECODED_BYTES: int = Politeness().max_decoded_bytes


@dataclass(frozen=True)
class StoredPage:
    """A response read back from a WARC file, its body decoded.

    ``error`` says why the body could not be decoded within the cap (``body`` is then
    empty): the page counts as a failed URL of its site, the others are read on.
    """

    url: str
    kind: str
    status: int
    content_type: str
    body: bytes
    fetched_at: datetime
    error: str | None = None
    location: str | None = None  # a redirect's Location header, as sent


def read_responses(
    path: Path, max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES
) -> Iterator[StoredPage]:
    """Every response record of a WARC file, in file order, bodies decoded up to the cap.

    The stored bytes are read as stored (warcio's ``content_stream()`` would inflate a gzip
    body without limit) and decoded by :func:`tasks.politeness.decode_content`.
    """
    with open(path, "rb") as handle:
        for record in ArchiveIterator(handle):
            if record.rec_type != "response":
                continue
            http = record.http_headers
            url = record.rec_headers.get_header("WARC-Target-URI")
            body, error = _decoded(
                record.raw_stream.read(), http.get_header("Content-Encoding"), url, path,
                max_decoded_bytes,
            )  # fmt: skip
            yield StoredPage(
                url=url,
                kind=record.rec_headers.get_header(KIND_HEADER) or "",
                status=int(http.get_statuscode()),
                content_type=http.get_header("Content-Type") or "",
                body=body,
                fetched_at=datetime.fromisoformat(record.rec_headers.get_header("WARC-Date")),
                error=error,
                location=http.get_header("Location"),
            )


def _decoded(
    raw: bytes, encoding: str | None, url: str, path: Path, cap: int
) -> tuple[bytes, str | None]:
    """The decoded body and no error, or no body and the error naming the WARC file."""
    try:
        return decode_content(raw, encoding, cap, url), None
    except UndecodableBody as exc:
        return b"", f"{exc} (page backup {path})"


def read_pages(
    path: Path, kind: str, max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES
) -> Iterator[StoredPage]:
    """The successful (200) responses of one kind (listing, lot, image) in a WARC file;
    a page whose body cannot be decoded within the cap comes with its ``error`` set."""
    for page in read_responses(path, max_decoded_bytes):
        if page.kind == kind and page.status == 200:
            yield page


def holds_crawl(path: Path) -> bool:
    """Whether the WARC holds a crawl (a listing or search page), not only lots fetched on
    demand (``auction-pipeline lot``). Reads record headers until the first such page, which
    comes near the start of a crawl's WARC."""
    with open(path, "rb") as handle:
        for record in ArchiveIterator(handle):
            kind = record.rec_headers.get_header(KIND_HEADER)
            if record.rec_type == "response" and kind in ("listing", "search"):
                return True
    return False
