"""Run repo-tool and SIGKILL it at its Nth storage write step.

    python -m tests.faults.killpoint [--trace FILE] [--s3] N|KIND#K -- REPO-TOOL ARGS...

Run from the checkout (``tests`` must be importable).  The shim wraps, in this process only and
from the outside (nothing in ``repo_tool/`` knows about it), the calls through which the publisher
changes storage, and counts each as a step:

* local storage: each write into a temporary file (flushed, so the bytes are in the file when the
  kill comes), each ``fsync`` of a file or a directory, and each ``link``/``replace``/``rename``,
  once before it (the temp file is complete, the name not there yet) and once after it;
* S3 (``--s3``): each write request (PutObject, CreateMultipartUpload, UploadPart,
  CompleteMultipartUpload, ...) just before it is sent (botocore ``before-send``) and just after
  its answer arrived (``after-call``), so the kill lands with the write either not done or done
  and unacknowledged.

At step N (or at the Kth step of a kind, e.g. ``write#5`` or ``after-call UploadPart#2``: uploads
run in parallel threads, so the Nth step of one run may be of another kind in the next) the process
sends itself SIGKILL: no ``finally``, no ``atexit``, no flush: a crash.  N = 0 never kills (a run
that counts the steps).  With ``--trace`` every step is appended to FILE as ``N<TAB>KIND<TAB>DETAIL``
before it can be the kill, so the test knows where the run died.

``python -m tests.faults.killpoint --serve`` is the same as a fork server (see :func:`serve`): the
tests start one interpreter and fork a child per run instead of paying for an interpreter start
and the imports (most of a small publish) each time.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable
from typing import Any, NoReturn
from urllib.parse import parse_qs, urlsplit

S3_WRITES = frozenset({"PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload",
                       "AbortMultipartUpload", "CopyObject", "DeleteObject", "DeleteObjects"})
USAGE = "usage: python -m tests.faults.killpoint [--trace FILE] [--s3] N|KIND#K -- REPO-TOOL ARGS..."


class Killer:
    """Counts steps (from any thread) and kills the process at step ``kill_at`` (an int: the Nth
    step; a (kind, K) pair: the Kth step of that kind)."""

    def __init__(self, kill_at: int | tuple[str, int], trace: str | None) -> None:
        self.kill_at = kill_at
        self.count = 0
        self.kinds: dict[str, int] = {}
        self._lock = threading.Lock()
        self._trace = (os.open(trace, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
                       if trace else None)

    def step(self, kind: str, detail: str) -> None:
        with self._lock:
            self.count += 1
            self.kinds[kind] = self.kinds.get(kind, 0) + 1
            if self._trace is not None:
                os.write(self._trace, f"{self.count}\t{kind}\t{detail}\n".encode())
            if self.kill_at in (self.count, (kind, self.kinds[kind])):
                os.kill(os.getpid(), signal.SIGKILL)


def _fd_path(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return f"fd {fd}"


class _TempFile:
    """A temporary file opened by the storage code: every write is a step."""

    def __init__(self, handle: Any, path: str, killer: Killer) -> None:
        self._handle = handle
        self._path = path
        self._killer = killer

    def write(self, data: bytes) -> int:
        written: int = self._handle.write(data)
        self._handle.flush()
        self._killer.step("write", self._path)
        return written

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)

    def __enter__(self) -> _TempFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.close()


def install_fs(killer: Killer) -> None:
    """Wrap tempfile.mkstemp (to know the temp files), os.fdopen, os.fsync, os.link, os.replace, os.rename."""
    real_mkstemp: Callable[..., tuple[int, str]] = tempfile.mkstemp
    real_fdopen: Callable[..., Any] = os.fdopen
    real_fsync = os.fsync
    temps: dict[int, str] = {}

    def mkstemp(*args: Any, **kwargs: Any) -> tuple[int, str]:
        fd, path = real_mkstemp(*args, **kwargs)
        temps[fd] = path
        return fd, path

    def fdopen(fd: int, *args: Any, **kwargs: Any) -> Any:
        handle = real_fdopen(fd, *args, **kwargs)
        path = temps.pop(fd, None)
        return handle if path is None else _TempFile(handle, path, killer)

    def fsync(fd: Any) -> None:
        real_fsync(fd)
        number = fd if isinstance(fd, int) else fd.fileno()
        kind = "fsync-dir" if stat.S_ISDIR(os.fstat(number).st_mode) else "fsync"
        killer.step(kind, _fd_path(number))

    def around(name: str, real: Callable[..., None]) -> Callable[..., None]:
        def call(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
            killer.step(f"before-{name}", os.fsdecode(dst))
            real(src, dst, *args, **kwargs)
            killer.step(f"after-{name}", os.fsdecode(dst))
        return call

    vars(tempfile)["mkstemp"] = mkstemp
    patched = {"fdopen": fdopen, "fsync": fsync, "link": around("link", os.link),
               "replace": around("replace", os.replace), "rename": around("rename", os.rename)}
    vars(os).update(patched)


def install_s3(killer: Killer) -> None:
    """Register botocore event handlers on every S3 client created from now on."""
    import botocore.session

    def describe(event_name: str, url: str) -> tuple[str, str]:
        operation = event_name.rsplit(".", 1)[-1]
        parts = urlsplit(url)
        number = parse_qs(parts.query).get("partNumber", [""])[0]
        return operation, parts.path + (f" part {number}" if number else "")

    def before_send(request: Any, event_name: str, **_: Any) -> None:
        operation, what = describe(event_name, request.url)
        if operation in S3_WRITES:
            killer.step(f"before-send {operation}", what)

    def after_call(http_response: Any, event_name: str, **_: Any) -> None:
        operation, what = describe(event_name, http_response.url)
        if operation in S3_WRITES:
            killer.step(f"after-call {operation}", f"{what} {http_response.status_code}")

    real_create = botocore.session.Session.create_client

    def create_client(self: Any, *args: Any, **kwargs: Any) -> Any:
        client = real_create(self, *args, **kwargs)
        if client.meta.service_model.service_name == "s3":
            client.meta.events.register("before-send.s3", before_send)
            client.meta.events.register("after-call.s3", after_call)
        return client

    botocore.session.Session.create_client = create_client  # type: ignore[method-assign]


def parse(argv: list[str]) -> tuple[int | tuple[str, int], str | None, bool, list[str]]:
    if "--" not in argv:
        raise SystemExit(USAGE)
    own, rest = argv[: argv.index("--")], argv[argv.index("--") + 1:]
    trace, s3 = None, False
    kill_at: int | tuple[str, int] | None = None
    it = iter(own)
    for arg in it:
        kind, _, number = arg.rpartition("#")
        if arg == "--trace":
            trace = next(it, None)
            if trace is None:
                raise SystemExit(USAGE)
        elif arg == "--s3":
            s3 = True
        elif arg.isdigit() and kill_at is None:
            kill_at = int(arg)
        elif kind and number.isdigit() and int(number) > 0 and kill_at is None:
            kill_at = (kind, int(number))
        else:
            raise SystemExit(f"unexpected {arg!r}; {USAGE}")
    if kill_at is None:
        raise SystemExit(USAGE)
    return kill_at, trace, s3, rest


def main(argv: list[str]) -> None:
    if argv == ["--serve"]:
        serve()
        return
    kill_at, trace, s3, rest = parse(argv)
    killer = Killer(kill_at, trace)
    install_fs(killer)
    if s3:
        install_s3(killer)
    from repo_tool.cli import main as repo_tool_main

    repo_tool_main(rest)


# --- a fork server: the same runs without an interpreter start and imports each -------------------


def serve() -> None:
    """``--serve``: import repo-tool (and boto3) once, then for each request read from stdin (one JSON
    object a line: ``argv`` as above, ``env``, ``cwd``, ``stdout``/``stderr`` file paths) fork a child
    that runs it exactly as a fresh process would, wait, and answer ``{"returncode": ...}`` (negative:
    the signal that ended it) on stdout.  Nothing here starts a thread, so forking is safe."""
    import boto3
    import botocore.session

    import repo_tool.cli

    del boto3, botocore, repo_tool  # imported for the children's sake only
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(request)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}), flush=True)


def _child(request: dict[str, Any]) -> NoReturn:
    code = 1
    try:
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        for fd, name in ((0, os.devnull), (1, request["stdout"]), (2, request["stderr"])):
            target = os.open(name, os.O_RDONLY if fd == 0 else os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(target, fd)
            os.close(target)
        main(request["argv"])
        code = 0
    except SystemExit as exc:
        if isinstance(exc.code, int) or exc.code is None:
            code = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


if __name__ == "__main__":
    main(sys.argv[1:])
