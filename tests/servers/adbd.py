"""A fake Android device: the device side of the adb protocol over TCP, for the real Debian `adb` client.

Why: there is no adbd for Linux hosts, and mocking the `adb` client would test nothing of what breaks on a real
phone (quoting through the device shell, exit codes, binary push/pull, dropped connections). So this speaks the
real wire protocol and the real adb server talks to it after `adb -P SERVERPORT connect 127.0.0.1:PORT`.

Implemented (AOSP system/core/adb protocol.txt, SYNC.TXT, shell_protocol.h):

* Transport messages: 24-byte header (command, arg0, arg1, data_length, data_check, magic = command ^ 0xffffffff),
  all little-endian. Checksums (sum of payload bytes) are always sent and only verified when the negotiated version
  is below A_VERSION_SKIP_CHECKSUM (0x01000001).
* CNXN handshake with a `device::ro.product.*;features=...` banner. Only implemented features are advertised:
  `shell_v2` and `fixed_push_mkdir` (no stat_v2/ls_v2/sendrecv_v2, so the client uses classic sync).
* AUTH: with `authorized=False` the device answers CNXN with AUTH TOKEN, rejects every signature with a new token
  and ignores the public key (the user never accepts the prompt) -> `adb devices` shows `unauthorized`.
* Streams: OPEN / OKAY / WRTE / CLSE with local/remote ids and one-WRTE-in-flight flow control.
* Services: `shell:CMD` (legacy raw: stdout+stderr merged, no exit code), `shell,v2,...:CMD` (shell protocol v2:
  stdin 0, stdout 1, stderr 2, exit 3, close-stdin 4, window-size 5; the exit packet carries the code), `exec:CMD`
  (raw stdout only) and `sync:` (STAT, LIST, SEND with mode + DATA chunks + DONE(mtime) -> OKAY, RECV -> DATA + DONE,
  FAIL with a message, QUIT).

The device filesystem is the host's: there is no path rewriting. Tests give the transport a temp directory as its
device work dir (`AdbTransport(workdir=...)`) instead of /data/local/tmp. Shell commands run as `/bin/sh -c CMD`
(cwd `shell_cwd`, default "/" like adbd) with a `getprop` script first on PATH that answers from `props`. With
`exec_wrapper=[prog, ...]` the wrapper replaces that sh: a command runs as `prog ... -c CMD` (an interactive
shell as `prog ...`). `exec_wrapper=["scripts/aarch64_exec.sh"]` makes the device an aarch64 one: its `-c` mode
runs the string with python3/uname shimmed into the qemu-aarch64 userland.

Fault injection: `abort_connections()` cuts every TCP connection at once (cable pulled / adbd died) and kills the
commands running; `drop_after_bytes=N` does that by itself once N payload bytes went to the host.

Use: `with FakeAdbd() as dev: subprocess.run(["adb", "-P", port, "connect", dev.serial])`. Or run this file
(`python tests/servers/adbd.py --port 5600`) to poke at it by hand.
"""
from __future__ import annotations

import argparse
import os
import shlex
import signal
import socket
import stat
import struct
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Sequence

# ---------------------------------------------------------------------------------------------------------------
# Message framing
# ---------------------------------------------------------------------------------------------------------------

A_SYNC, A_CNXN, A_OPEN, A_OKAY = 0x434E5953, 0x4E584E43, 0x4E45504F, 0x59414B4F
A_CLSE, A_WRTE, A_AUTH, A_STLS = 0x45534C43, 0x45545257, 0x48545541, 0x534C5453
A_VERSION_MIN = 0x01000000
A_VERSION_SKIP_CHECKSUM = 0x01000001
A_VERSION = 0x01000001
MAX_PAYLOAD = 1024 * 1024
AUTH_TOKEN, AUTH_SIGNATURE, AUTH_RSAPUBLICKEY = 1, 2, 3

_HEADER = struct.Struct("<6I")
_NAMES = {A_SYNC: "SYNC", A_CNXN: "CNXN", A_OPEN: "OPEN", A_OKAY: "OKAY", A_CLSE: "CLSE", A_WRTE: "WRTE",
          A_AUTH: "AUTH", A_STLS: "STLS"}

DEFAULT_FEATURES = ("shell_v2", "fixed_push_mkdir")
DEFAULT_PROPS = {
    "ro.product.name": "sdeploy_test",
    "ro.product.model": "SdeployTest",
    "ro.product.device": "generic_arm64",
    "ro.product.cpu.abi": "arm64-v8a",
    "ro.product.cpu.abilist": "arm64-v8a",
    "ro.build.version.sdk": "33",
    "ro.build.version.release": "13",
    "ro.hardware": "sdeploy",
}


class ProtocolError(Exception):
    """The peer sent something that is not the adb protocol: the connection is dropped, like adbd does."""


class Message:
    """One adb transport message (header + payload)."""

    __slots__ = ("command", "arg0", "arg1", "data")

    def __init__(self, command: int, arg0: int, arg1: int, data: bytes = b""):
        self.command, self.arg0, self.arg1, self.data = command, arg0, arg1, data

    def pack(self) -> bytes:
        check = sum(self.data) & 0xFFFFFFFF
        return _HEADER.pack(self.command, self.arg0, self.arg1, len(self.data), check,
                            self.command ^ 0xFFFFFFFF) + self.data

    def __repr__(self) -> str:
        return f"<{_NAMES.get(self.command, hex(self.command))} {self.arg0} {self.arg1} {self.data[:40]!r}>"


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("peer closed")
        buf += chunk
    return bytes(buf)


def read_message(sock: socket.socket, *, verify_checksum: bool, max_payload: int) -> Message:
    command, arg0, arg1, length, check, magic = _HEADER.unpack(_recv_exact(sock, _HEADER.size))
    if magic != command ^ 0xFFFFFFFF:
        raise ProtocolError(f"bad magic for command {command:#x}")
    if length > max_payload:
        raise ProtocolError(f"payload of {length} bytes exceeds {max_payload}")
    data = _recv_exact(sock, length) if length else b""
    if verify_checksum and (sum(data) & 0xFFFFFFFF) != check:
        raise ProtocolError("bad payload checksum")
    return Message(command, arg0, arg1, data)


# ---------------------------------------------------------------------------------------------------------------
# Streams (one per OPEN): a byte pipe in, flow-controlled WRTEs out
# ---------------------------------------------------------------------------------------------------------------

class StreamClosed(Exception):
    """The stream (or its connection) was closed while a service was reading or writing it."""


class Stream:
    """One multiplexed stream. Services see a blocking byte-stream; the connection feeds and drains it."""

    def __init__(self, conn: "Connection", local_id: int, remote_id: int):
        self.conn, self.local_id, self.remote_id = conn, local_id, remote_id
        self._buf = bytearray()
        self._cond = threading.Condition()
        self._can_send = True          # the device may WRTE right after its OKAY to OPEN
        self.closed = False            # by either side
        self._on_close: list[Callable[[], None]] = []

    # -- fed by the connection's reader thread --
    def feed(self, data: bytes) -> None:
        with self._cond:
            self._buf += data
            self._cond.notify_all()

    def peer_ready(self) -> None:
        with self._cond:
            self._can_send = True
            self._cond.notify_all()

    def mark_closed(self) -> None:
        with self._cond:
            if self.closed:
                return
            self.closed = True
            self._cond.notify_all()
            callbacks, self._on_close = self._on_close, []
        for cb in callbacks:
            cb()

    def on_close(self, cb: Callable[[], None]) -> None:
        with self._cond:
            if not self.closed:
                self._on_close.append(cb)
                return
        cb()

    # -- used by services --
    def read_exact(self, n: int) -> bytes:
        with self._cond:
            while len(self._buf) < n:
                if self.closed:
                    raise StreamClosed()
                self._cond.wait()
            out = bytes(self._buf[:n])
            del self._buf[:n]
            return out

    def read_some(self) -> bytes:
        """Whatever is buffered (at least one byte); b"" once closed and drained."""
        with self._cond:
            while not self._buf and not self.closed:
                self._cond.wait()
            out = bytes(self._buf)
            self._buf.clear()
            return out

    def write(self, data: bytes) -> None:
        step = self.conn.max_payload
        for i in range(0, len(data), step):
            with self._cond:
                while not self._can_send and not self.closed:
                    self._cond.wait()
                if self.closed:
                    raise StreamClosed()
                self._can_send = False
            self.conn.send(Message(A_WRTE, self.local_id, self.remote_id, data[i:i + step]), payload=True)

    def close(self) -> None:
        """Close from the device side (service finished): tell the host unless it closed first."""
        with self._cond:
            already = self.closed
        if not already:
            try:
                self.conn.send(Message(A_CLSE, self.local_id, self.remote_id))
            except OSError:
                pass
        self.conn.forget(self)
        self.mark_closed()


# ---------------------------------------------------------------------------------------------------------------
# Services
# ---------------------------------------------------------------------------------------------------------------

SHELL_STDIN, SHELL_STDOUT, SHELL_STDERR, SHELL_EXIT, SHELL_CLOSE_STDIN, SHELL_WINDOW = 0, 1, 2, 3, 4, 5
_SHELL_PACKET = struct.Struct("<BI")


class ShellService:
    """`shell:`, `shell,v2,raw:`, `exec:`: run a command in a process group; frame output for v2."""

    def __init__(self, device: "FakeAdbd", stream: Stream, command: str, *, v2: bool, merge_stderr: bool):
        self.device, self.stream, self.command = device, stream, command
        self.v2, self.merge_stderr = v2, merge_stderr
        self.proc: subprocess.Popen | None = None

    def argv(self) -> list[str]:
        """adbd runs `/system/bin/sh -c CMD`; an exec_wrapper stands in for that sh (same `-c CMD` arguments)."""
        shell = self.device.exec_wrapper or ["/bin/sh"]
        return [*shell, "-c", self.command] if self.command else list(shell)

    def run(self) -> None:
        self.device.record_command(self.command)
        try:
            self.proc = subprocess.Popen(
                self.argv(), cwd=self.device.shell_cwd, env=self.device.shell_env(), stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT if self.merge_stderr else subprocess.PIPE,
                start_new_session=True)
        except OSError as exc:
            self._finish(f"/system/bin/sh: {exc}\n".encode(), 127)
            return
        self.device.track_process(self.proc)
        self.stream.on_close(self.kill)     # host gone (client killed, timeout): stop the command
        pumps = [threading.Thread(target=self._pump_out, args=(self.proc.stdout, SHELL_STDOUT), daemon=True)]
        if self.proc.stderr is not None:
            pumps.append(threading.Thread(target=self._pump_out, args=(self.proc.stderr, SHELL_STDERR),
                                          daemon=True))
        for t in pumps:
            t.start()
        threading.Thread(target=self._pump_in, daemon=True).start()
        for t in pumps:
            t.join()
        code = self.proc.wait()
        self.device.untrack_process(self.proc)
        self._finish(b"", code)

    def _send(self, packet_id: int, data: bytes) -> None:
        if self.v2:
            data = _SHELL_PACKET.pack(packet_id, len(data)) + data
        self.stream.write(data)

    def _pump_out(self, pipe, packet_id: int) -> None:
        try:
            while chunk := os.read(pipe.fileno(), 64 * 1024):
                self._send(packet_id, chunk)
        except (StreamClosed, OSError):
            self.kill()
        finally:
            pipe.close()

    def _pump_in(self) -> None:
        """Host -> process stdin. v2 frames it (and says when stdin ends); raw is plain bytes until CLSE."""
        stdin = self.proc.stdin
        try:
            if not self.v2:
                while data := self.stream.read_some():
                    stdin.write(data)
                    stdin.flush()
                return
            while True:
                packet_id, length = _SHELL_PACKET.unpack(self.stream.read_exact(_SHELL_PACKET.size))
                data = self.stream.read_exact(length) if length else b""
                if packet_id == SHELL_STDIN:
                    stdin.write(data)
                    stdin.flush()
                elif packet_id == SHELL_CLOSE_STDIN:
                    return
                # SHELL_WINDOW and unknown ids: nothing to do without a pty
        except (StreamClosed, OSError, ValueError):
            pass
        finally:
            try:
                stdin.close()
            except OSError:
                pass

    def _finish(self, stderr: bytes, code: int) -> None:
        try:
            if stderr:
                self._send(SHELL_STDERR, stderr)
            if self.v2:
                # adbd reports signals as 128+N, like a shell; the exit packet is one byte.
                self._send(SHELL_EXIT, bytes([(128 - code if code < 0 else code) & 0xFF]))
        except StreamClosed:
            pass
        self.stream.close()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


SYNC_DATA_MAX = 64 * 1024
_SYNC_HDR = struct.Struct("<4sI")


class SyncService:
    """`sync:`: classic (v1) file sync: STAT, LIST, SEND, RECV, QUIT. Requests are id(4) + length(4 LE) + body."""

    def __init__(self, device: "FakeAdbd", stream: Stream):
        self.device, self.stream = device, stream

    def run(self) -> None:
        try:
            while True:
                ident, length = _SYNC_HDR.unpack(self.stream.read_exact(8))
                if ident == b"QUIT":
                    break
                if length > 1024:
                    self._fail("path too long")
                    break
                path = self.stream.read_exact(length).decode("utf-8", "surrogateescape")
                handler = {b"STAT": self._stat, b"LIST": self._list, b"SEND": self._send,
                           b"RECV": self._recv}.get(ident)
                if handler is None:
                    self._fail(f"unknown sync command {ident!r}")
                    break
                if handler(path) is False:
                    break
        except StreamClosed:
            pass
        self.stream.close()

    def _fail(self, message: str) -> None:
        data = message.encode()
        self.stream.write(_SYNC_HDR.pack(b"FAIL", len(data)) + data)

    def _stat(self, path: str) -> None:
        try:
            st = os.stat(path)
            self.stream.write(struct.pack("<4s3I", b"STAT", st.st_mode & 0xFFFFFFFF, st.st_size & 0xFFFFFFFF,
                                          int(st.st_mtime) & 0xFFFFFFFF))
        except OSError:
            self.stream.write(struct.pack("<4s3I", b"STAT", 0, 0, 0))

    def _list(self, path: str) -> None:
        try:
            names = sorted(os.listdir(path))
        except OSError:
            names = []
        out = bytearray()
        for name in [".", "..", *names]:
            try:
                st = os.lstat(os.path.join(path, name))
            except OSError:
                continue
            raw = name.encode("utf-8", "surrogateescape")
            out += struct.pack("<4s4I", b"DENT", st.st_mode & 0xFFFFFFFF, st.st_size & 0xFFFFFFFF,
                               int(st.st_mtime) & 0xFFFFFFFF, len(raw)) + raw
        out += struct.pack("<4s4I", b"DONE", 0, 0, 0, 0)
        self.stream.write(bytes(out))

    def _send(self, spec: str) -> bool:
        """SEND "path,mode"; then DATA chunks and DONE(mtime). Reply OKAY, or FAIL (after draining the data)."""
        path, _, mode_text = spec.rpartition(",")
        try:
            mode = int(mode_text)
        except ValueError:
            path, mode = spec, 0o100644
        error, chunks, mtime = None, [], None
        while True:
            ident, length = _SYNC_HDR.unpack(self.stream.read_exact(8))
            if ident == b"DATA":
                if length > SYNC_DATA_MAX:
                    self._fail("data chunk too large")
                    return False
                chunks.append(self.stream.read_exact(length))
            elif ident == b"DONE":
                mtime = length
                break
            else:
                self._fail(f"unexpected {ident!r} during SEND")
                return False
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)    # adbd: secure_mkdirs (fixed_push_mkdir)
            if stat.S_ISLNK(mode):
                if os.path.lexists(path):
                    os.unlink(path)
                os.symlink(b"".join(chunks).decode(), path)
            else:
                tmp = f"{path}.sdeploy-adbd-tmp"
                with open(tmp, "wb") as fh:
                    for c in chunks:
                        fh.write(c)
                os.chmod(tmp, stat.S_IMODE(mode) or 0o644)
                os.replace(tmp, path)
                os.utime(path, (mtime, mtime))
        except OSError as exc:
            error = f"couldn't create file: {exc.strerror or exc}"
        if error:
            self._fail(error)
        else:
            self.stream.write(_SYNC_HDR.pack(b"OKAY", 0))
        return True

    def _recv(self, path: str) -> None:
        try:
            with open(path, "rb") as fh:
                while chunk := fh.read(SYNC_DATA_MAX):
                    self.stream.write(_SYNC_HDR.pack(b"DATA", len(chunk)) + chunk)
        except OSError as exc:
            self._fail(exc.strerror or str(exc))
            return
        self.stream.write(_SYNC_HDR.pack(b"DONE", 0))


def parse_service(name: str) -> tuple[str, dict]:
    """Split an OPEN payload into (kind, options): shell[,v2][,raw|pty][,TERM=x]:cmd, exec:cmd, sync:."""
    if name.startswith("shell"):
        head, sep, command = name.partition(":")
        if sep and (head == "shell" or head.startswith("shell,")):
            args = head.split(",")[1:]
            return "shell", {"v2": "v2" in args, "command": command}
    if name.startswith("exec:"):
        return "exec", {"command": name[len("exec:"):]}
    if name == "sync:":
        return "sync", {}
    return "unknown", {}


# ---------------------------------------------------------------------------------------------------------------
# Connection: handshake, auth, stream table
# ---------------------------------------------------------------------------------------------------------------

class Connection:
    """One TCP connection from an adb server: a reader loop dispatching messages into a stream table."""

    def __init__(self, device: "FakeAdbd", sock: socket.socket):
        self.device, self.sock = device, sock
        self.version = A_VERSION_MIN
        self.max_payload = 4096
        self.online = False
        self.streams: dict[int, Stream] = {}
        self._next_id = 1
        self._send_lock = threading.Lock()
        self._table_lock = threading.Lock()

    def send(self, msg: Message, *, payload: bool = False) -> None:
        with self._send_lock:
            self.sock.sendall(msg.pack())
        if payload:
            self.device.count_payload(len(msg.data))

    def forget(self, stream: Stream) -> None:
        with self._table_lock:
            self.streams.pop(stream.local_id, None)

    def serve(self) -> None:
        try:
            while True:
                msg = read_message(self.sock, verify_checksum=self.version < A_VERSION_SKIP_CHECKSUM,
                                   max_payload=MAX_PAYLOAD)
                self.device.log(f"<- {msg!r}")
                self.dispatch(msg)
        except (ConnectionError, OSError, ProtocolError, struct.error) as exc:
            self.device.log(f"connection ended: {exc!r}")
        finally:
            self.shutdown()

    def dispatch(self, msg: Message) -> None:
        if msg.command == A_CNXN:
            self.version = min(msg.arg0, A_VERSION)
            self.max_payload = min(msg.arg1, MAX_PAYLOAD) or 4096
            if self.device.authorized:
                self._go_online()
            else:
                self._send_token()
        elif msg.command == A_AUTH:
            if msg.arg0 == AUTH_SIGNATURE:
                self._send_token()          # never a valid signature: ask again, the host tries its next key
            # AUTH_RSAPUBLICKEY: the phone would show the "Allow USB debugging?" prompt; nobody accepts it.
        elif not self.online:
            return                          # adbd ignores everything else until the handshake is done
        elif msg.command == A_OPEN:
            self._open(msg.arg0, msg.data.rstrip(b"\0").decode("utf-8", "surrogateescape"))
        elif msg.command == A_WRTE:
            stream = self.streams.get(msg.arg1)
            if stream is not None and not stream.closed:
                stream.feed(msg.data)
                self.send(Message(A_OKAY, stream.local_id, stream.remote_id))
        elif msg.command == A_OKAY:
            stream = self.streams.get(msg.arg1)
            if stream is not None:
                stream.peer_ready()
        elif msg.command == A_CLSE:
            with self._table_lock:
                stream = self.streams.pop(msg.arg1, None)
            if stream is not None:
                stream.mark_closed()

    def _go_online(self) -> None:
        self.online = True
        self.send(Message(A_CNXN, A_VERSION, MAX_PAYLOAD, self.device.banner().encode()))

    def _send_token(self) -> None:
        self.send(Message(A_AUTH, AUTH_TOKEN, 0, os.urandom(20)))

    def _open(self, remote_id: int, name: str) -> None:
        kind, opts = parse_service(name)
        if kind == "unknown" or remote_id == 0:
            self.send(Message(A_CLSE, 0, remote_id))     # "closed": the host reports the service as unknown
            return
        with self._table_lock:
            local_id = self._next_id
            self._next_id += 1
            stream = self.streams[local_id] = Stream(self, local_id, remote_id)
        self.send(Message(A_OKAY, local_id, remote_id))
        if kind == "sync":
            service = SyncService(self.device, stream)
        else:
            service = ShellService(self.device, stream, opts["command"], v2=opts.get("v2", False),
                                   merge_stderr=(kind == "shell" and not opts["v2"]))
        threading.Thread(target=service.run, name=f"adbd-{kind}-{local_id}", daemon=True).start()

    def shutdown(self) -> None:
        """Cut the TCP connection and close every stream (their services kill their commands)."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        with self._table_lock:
            streams, self.streams = list(self.streams.values()), {}
        for s in streams:
            s.mark_closed()
        self.device.forget_connection(self)


# ---------------------------------------------------------------------------------------------------------------
# The device
# ---------------------------------------------------------------------------------------------------------------

class FakeAdbd:
    """A fake device listening on 127.0.0.1:port (0 = pick a free one). Start/stop it with `with`."""

    def __init__(self, *, port: int = 0, authorized: bool = True, features: Sequence[str] = DEFAULT_FEATURES,
                 props: dict[str, str] | None = None, shell_cwd: str | os.PathLike = "/",
                 exec_wrapper: Sequence[str] | None = None, drop_after_bytes: int | None = None,
                 verbose: bool = False):
        self.port, self.authorized, self.features = port, authorized, tuple(features)
        self.props = {**DEFAULT_PROPS, **(props or {})}
        self.shell_cwd = os.fspath(shell_cwd)
        self.exec_wrapper = list(exec_wrapper) if exec_wrapper else None
        self.drop_after_bytes = drop_after_bytes
        self.verbose = verbose
        self.commands: list[str] = []            # every shell/exec command received, in order
        self._cond = threading.Condition()
        self._sent = 0
        self._conns: set[Connection] = set()
        self._procs: set[subprocess.Popen] = set()
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._tmp: tempfile.TemporaryDirectory | None = None
        self._stopping = False

    # -- lifecycle --
    @property
    def serial(self) -> str:
        """What the adb server calls this device after `adb connect`."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> "FakeAdbd":
        self._tmp = tempfile.TemporaryDirectory(prefix="sdeploy-adbd-")
        self._write_getprop(Path(self._tmp.name) / "bin")
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", self.port))
        self._listener.listen(8)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept_loop, name=f"adbd-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping = True
        if self._listener is not None:
            try:
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._listener.close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.abort_connections()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> "FakeAdbd":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _accept_loop(self) -> None:
        while not self._stopping:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = Connection(self, sock)
            with self._cond:
                self._conns.add(conn)
            threading.Thread(target=conn.serve, name=f"adbd-conn-{self.port}", daemon=True).start()

    # -- fault injection --
    def abort_connections(self) -> None:
        """Drop every connection now and kill running commands: what the host sees when the cable is pulled."""
        with self._cond:
            conns, procs = list(self._conns), list(self._procs)
        for conn in conns:
            conn.shutdown()
        for proc in procs:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def count_payload(self, n: int) -> None:
        with self._cond:
            self._sent += n
            trip = self.drop_after_bytes is not None and self._sent >= self.drop_after_bytes
        if trip:
            self.drop_after_bytes = None
            threading.Thread(target=self.abort_connections, daemon=True).start()

    # -- bookkeeping used by connections and services --
    def forget_connection(self, conn: Connection) -> None:
        with self._cond:
            self._conns.discard(conn)

    def track_process(self, proc: subprocess.Popen) -> None:
        with self._cond:
            self._procs.add(proc)

    def untrack_process(self, proc: subprocess.Popen) -> None:
        with self._cond:
            self._procs.discard(proc)

    def record_command(self, command: str) -> None:
        with self._cond:
            self.commands.append(command)
            self._cond.notify_all()

    def wait_for_command(self, needle: str, timeout: float = 10.0) -> str:
        """Block until a received command contains `needle` (so a test can abort while it runs)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for c in self.commands:
                    if needle in c:
                        return c
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no command containing {needle!r}; got {self.commands!r}")
                self._cond.wait(left)

    @property
    def connection_count(self) -> int:
        with self._cond:
            return len(self._conns)

    def log(self, text: str) -> None:
        if self.verbose:
            print(f"[adbd:{self.port}] {text}", flush=True)

    # -- device identity --
    def banner(self) -> str:
        props = "".join(f"{k}={self.props[k]};" for k in ("ro.product.name", "ro.product.model",
                                                          "ro.product.device"))
        return f"device::{props}features={','.join(self.features)}"

    def _write_getprop(self, bindir: Path) -> None:
        """A `getprop` on PATH: `getprop NAME` prints the value (or nothing), bare `getprop` lists [k]: [v]."""
        bindir.mkdir(parents=True)
        cases = "".join(f"  {shlex.quote(k)}) printf '%s\\n' {shlex.quote(v)} ;;\n" for k, v in self.props.items())
        listing = "".join(f"printf '%s\\n' {shlex.quote(f'[{k}]: [{v}]')}\n" for k, v in sorted(self.props.items()))
        script = bindir / "getprop"
        script.write_text(f'#!/bin/sh\nif [ $# -eq 0 ]; then\n{listing}exit 0\nfi\ncase "$1" in\n{cases}'
                          f'  *) [ $# -ge 2 ] && printf \'%s\\n\' "$2" ;;\nesac\nexit 0\n')
        script.chmod(0o755)
        self._bindir = str(bindir)

    def shell_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PATH"] = f"{self._bindir}:{env.get('PATH', '/usr/bin:/bin')}"
        env["ANDROID_DATA"] = "/data"
        return env


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--unauthorized", action="store_true")
    ap.add_argument("--exec-wrapper", help="command prefix, split with shlex")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    wrapper = shlex.split(args.exec_wrapper) if args.exec_wrapper else None
    with FakeAdbd(port=args.port, authorized=not args.unauthorized, exec_wrapper=wrapper,
                  verbose=args.verbose) as dev:
        print(f"fake adbd on {dev.serial}; adb connect {dev.serial}", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
