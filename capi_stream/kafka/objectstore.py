"""A tiny file-backed S3-compatible server: the disk under the embedded broker's ``s3://`` engine.

Tansu (the embedded broker) keeps topics, records, committed offsets and producer state as
objects through the ``object_store`` crate. Pointed at this server, every object is a file
under ``root/<bucket>/<key>``, written to a temporary file, flushed and renamed into place
before the PUT is answered, so an acknowledged produce survives a SIGKILL of the broker, of
this server, or of both (a ``make run`` restart).

Only what Tansu uses is served: bucket create, object PUT/GET/HEAD/DELETE, ListObjectsV2
(prefix, delimiter) and the conditional writes its optimistic concurrency relies on
(``If-None-Match: *`` to create, ``If-Match: <etag>`` to update). Those must be atomic: two
produce requests racing for one partition's watermark would otherwise both take the same
offset and one acknowledged batch would overwrite the other (two S3 servers from our
registries do exactly that; see the README's durability section). No authentication: it
listens on loopback only, for one local broker.

Run as ``python -m capi_stream.kafka.objectstore --root DIR --port N``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import threading
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape

_TMP_DIR = ".tmp"


class ObjectStoreServer(ThreadingHTTPServer):
    """Serves ``root`` over the S3 REST subset; one lock makes check-then-write atomic."""

    daemon_threads = True

    def __init__(self, root: Path, host: str, port: int, *, fsync: bool = True) -> None:
        self.root = root.resolve()
        self.fsync = fsync
        self.write_lock = threading.Lock()
        # This process is the only writer, so what it wrote it knows: each object's ETag, and
        # per folder a generation that every write below it bumps. Idle consumers poll every
        # partition's watermark and record listing several times a second; these make those
        # polls a stat or a dictionary hit instead of reading and hashing files.
        self.etags: dict[Path, str] = {}
        self.generations: dict[Path, int] = {}
        self.listings: dict[tuple[Path, str, str, str], tuple[int, bytes]] = {}
        (self.root / _TMP_DIR).mkdir(parents=True, exist_ok=True)
        super().__init__((host, port), _Handler)

    def etag(self, path: Path) -> str:
        """The ETag of an existing object (cached; hashed once after a restart)."""
        etag = self.etags.get(path)
        if etag is None:
            etag = self.etags[path] = etag_of(path.read_bytes())
        return etag

    def wrote(self, path: Path, etag: str | None) -> None:
        """Record a write (``etag``) or a delete (None); the caller holds ``write_lock``."""
        if etag is None:
            self.etags.pop(path, None)
        else:
            self.etags[path] = etag
        for folder in path.parents:
            self.generations[folder] = self.generations.get(folder, 0) + 1
            if folder == self.root:
                break


def etag_of(data: bytes) -> str:
    """The quoted MD5 of the content, as S3 gives it for a single-part object."""
    return f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"'


class _Handler(BaseHTTPRequestHandler):
    server: ObjectStoreServer
    protocol_version = "HTTP/1.1"
    # Headers and body leave in one segment: written apart on a kept-alive connection, Nagle
    # and the client's delayed ACK held every answer ~40 ms.
    disable_nagle_algorithm = True
    wbufsize = 64 * 1024

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib's name
        """Quiet: one line per request would drown the dev log."""

    # -- routing ---------------------------------------------------------------------------
    def _target(self) -> tuple[str, str, dict[str, list[str]]]:
        parts = urlsplit(self.path)
        path = unquote(parts.path).lstrip("/")
        bucket, _, key = path.partition("/")
        return bucket, key, parse_qs(parts.query, keep_blank_values=True)

    def _file(self, bucket: str, key: str) -> Path | None:
        """The file of ``bucket/key``, or None when the key would escape the root."""
        segments = [bucket, *key.split("/")]
        if any(s in ("", ".", "..") for s in segments) or bucket == _TMP_DIR:
            return None
        return self.server.root.joinpath(*segments)

    def do_PUT(self) -> None:
        body = self._read_body()
        bucket, key, _query = self._target()
        if not key:
            if self._file(bucket, "x") is None:
                self._error(HTTPStatus.BAD_REQUEST, "InvalidBucketName")
                return
            (self.server.root / bucket).mkdir(exist_ok=True)
            self._reply(HTTPStatus.OK)
            return
        path = self._file(bucket, key)
        if path is None or not (self.server.root / bucket).is_dir():
            self._error(HTTPStatus.NOT_FOUND, "NoSuchBucket")
            return
        if_none_match = self.headers.get("If-None-Match")
        if_match = self.headers.get("If-Match")
        etag = etag_of(body)
        with self.server.write_lock:
            exists = path.is_file()
            if if_none_match == "*" and exists:
                self._error(HTTPStatus.PRECONDITION_FAILED, "PreconditionFailed")
                return
            if if_match is not None and (not exists or self.server.etag(path) != if_match):
                # S3 answers 404 for If-Match on a missing key; object_store reads both as
                # "someone else wrote first" (Precondition), which is what Tansu retries on.
                self._error(HTTPStatus.PRECONDITION_FAILED, "PreconditionFailed")
                return
            self._write_atomically(path, body)
            self.server.wrote(path, etag)
        self._reply(HTTPStatus.OK, headers={"ETag": etag})

    def do_GET(self) -> None:
        self._get(send_body=True)

    def do_HEAD(self) -> None:
        self._get(send_body=False)

    def do_DELETE(self) -> None:
        bucket, key, _query = self._target()
        path = self._file(bucket, key) if key else None
        if path is not None:
            with self.server.write_lock:
                path.unlink(missing_ok=True)
                self.server.wrote(path, None)
        self._reply(HTTPStatus.NO_CONTENT)

    # -- reads -----------------------------------------------------------------------------
    def _get(self, *, send_body: bool) -> None:
        bucket, key, query = self._target()
        if not key:
            if not (self.server.root / bucket).is_dir() or self._file(bucket, "x") is None:
                self._error(HTTPStatus.NOT_FOUND, "NoSuchBucket", send_body=send_body)
            elif query.get("list-type") == ["2"] and send_body:
                self._list(bucket, query)
            else:
                self._reply(HTTPStatus.OK)
            return
        path = self._file(bucket, key)
        if_none_match = self.headers.get("If-None-Match")
        data: bytes | None = None
        try:
            # Under the write lock: the content and its ETag must be of the same write.
            with self.server.write_lock:
                if path is None or not path.is_file():
                    raise FileNotFoundError(key)
                stat = path.stat()
                etag = self.server.etag(path)
                if if_none_match != etag:
                    data = path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            self._error(HTTPStatus.NOT_FOUND, "NoSuchKey", send_body=send_body)
            return
        headers = {"ETag": etag, "Last-Modified": _http_date(stat.st_mtime)}
        if data is None:
            self._reply(HTTPStatus.NOT_MODIFIED, headers=headers)
            return
        if self.headers.get("If-Match") not in (None, etag):
            self._error(HTTPStatus.PRECONDITION_FAILED, "PreconditionFailed", send_body=send_body)
            return
        headers["Content-Type"] = "application/octet-stream"
        self._reply(HTTPStatus.OK, data, headers=headers, send_body=send_body)

    def _list(self, bucket: str, query: dict[str, list[str]]) -> None:
        prefix = query.get("prefix", [""])[0]
        delimiter = query.get("delimiter", [""])[0]
        start_after = query.get("start-after", [""])[0]
        base = self.server.root / bucket
        # Walk only the folder the prefix names: Tansu lists a partition's records on every
        # fetch, and a fetch that outlasts the consumer's fetch.wait.max.ms comes back empty.
        folder = self._file(bucket, prefix.rsplit("/", 1)[0]) if "/" in prefix else base
        if folder is None:
            folder = base
        cache_key = (folder, prefix, delimiter, start_after)
        generation = self.server.generations.get(folder, 0)
        cached = self.server.listings.get(cache_key)
        if cached is not None and cached[0] == generation:
            self._reply(HTTPStatus.OK, cached[1], headers={"Content-Type": "application/xml"})
            return
        contents: list[str] = []
        prefixes: set[str] = set()
        for key, stat in _walk(base, folder):
            if not key.startswith(prefix) or key <= start_after:
                continue
            rest = key[len(prefix) :]
            if delimiter and delimiter in rest:
                prefixes.add(prefix + rest.split(delimiter, 1)[0] + delimiter)
                continue
            contents.append(
                f"<Contents><Key>{escape(key)}</Key>"
                f"<LastModified>{_iso_date(stat.st_mtime)}</LastModified>"
                f"<Size>{stat.st_size}</Size><StorageClass>STANDARD</StorageClass></Contents>"
            )
        common = "".join(
            f"<CommonPrefixes><Prefix>{escape(p)}</Prefix></CommonPrefixes>"
            for p in sorted(prefixes)
        )
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            f"<Name>{escape(bucket)}</Name><Prefix>{escape(prefix)}</Prefix>"
            f"<KeyCount>{len(contents) + len(prefixes)}</KeyCount>"
            f"<MaxKeys>{len(contents) + len(prefixes) + 1000}</MaxKeys>"
            f"<IsTruncated>false</IsTruncated>{''.join(contents)}{common}</ListBucketResult>"
        )
        body = xml.encode()
        # Kept under the generation read before walking: a write meanwhile makes it stale.
        self.server.listings[cache_key] = (generation, body)
        self._reply(HTTPStatus.OK, body, headers={"Content-Type": "application/xml"})

    # -- plumbing --------------------------------------------------------------------------
    def _write_atomically(self, path: Path, body: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.server.root / _TMP_DIR / f"{threading.get_ident()}-{os.getpid()}.part"
        with open(tmp, "wb") as file:
            file.write(body)
            if self.server.fsync:
                file.flush()
                os.fsync(file.fileno())
        os.replace(tmp, path)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _error(self, status: HTTPStatus, code: str, *, send_body: bool = True) -> None:
        xml = f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code></Error>'
        self._reply(
            status, xml.encode(), headers={"Content-Type": "application/xml"}, send_body=send_body
        )

    def _reply(
        self,
        status: HTTPStatus,
        body: bytes = b"",
        *,
        headers: dict[str, str] | None = None,
        send_body: bool = True,
    ) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        no_body = status in (HTTPStatus.NO_CONTENT, HTTPStatus.NOT_MODIFIED)
        self.send_header("Content-Length", "0" if no_body else str(len(body)))
        self.end_headers()
        if send_body and not no_body:
            self.wfile.write(body)


def _walk(base: Path, folder: Path | None) -> list[tuple[str, os.stat_result]]:
    """Every file under ``folder`` as ``(key relative to base, stat)``, sorted by key."""
    found: list[tuple[str, os.stat_result]] = []
    if folder is None or not folder.is_dir():
        return found
    base_text = str(base) + os.sep
    for dirpath, _dirs, names in os.walk(folder):
        relative = dirpath[len(base_text) :].replace(os.sep, "/") if dirpath != str(base) else ""
        for name in names:
            try:
                stat = os.stat(os.path.join(dirpath, name))
            except FileNotFoundError:  # deleted while listing
                continue
            found.append((f"{relative}/{name}" if relative else name, stat))
    found.sort(key=lambda item: item[0])
    return found


def _http_date(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")


def _iso_date(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def main(argv: list[str] | None = None) -> None:
    """Serve ``--root`` on ``--host:--port`` until killed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--no-fsync", action="store_true", help="skip fsync (crash-safe only)")
    args = parser.parse_args(argv)
    server = ObjectStoreServer(args.root, args.host, args.port, fsync=not args.no_fsync)
    with contextlib.suppress(KeyboardInterrupt):  # SIGINT is how EmbeddedBroker stops it
        server.serve_forever()


if __name__ == "__main__":
    main()
