"""AdbTransport against the real Debian `adb` client and server, talking to tests/servers/adbd.py (a fake device).

Each test gets its own adb server port (`-P` and ANDROID_ADB_SERVER_PORT) and its own HOME (adb writes its RSA key
pair to ~/.android) and kills that server at the end, so the user's default server on 5037 is never touched.
The fake device runs commands on this host; its "device filesystem" is the host's, so the transport's workdir is a
temp dir instead of /data/local/tmp.
"""
from __future__ import annotations

import os
import shutil
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

import pytest

from helpers import REPO
from shufflenet_deploy.devices.adb import AdbTransport
from shufflenet_deploy.errors import DeviceError, UserError

try:
    from tests.servers import adbd
except ImportError:  # tests/ is not a package: pytest put tests/ itself on sys.path
    from servers import adbd
FakeAdbd = adbd.FakeAdbd

ADB = shutil.which("adb")
AARCH64_ROOT = REPO / ".cache" / "aarch64-root"
AARCH64_EXEC = REPO / "scripts" / "aarch64_exec.sh"

pytestmark = pytest.mark.adb
needs_adb = pytest.mark.skipif(ADB is None, reason="Debian's `adb` client is not installed (apt-get install adb; "
                                                   "`make test` installs it)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AdbServer:
    """One private adb server (started lazily by the first adb command) and helpers to drive it."""

    def __init__(self, port: int, home: Path):
        self.port, self.home = port, home

    def adb(self, *args: str, timeout: float = 20) -> subprocess.CompletedProcess:
        return subprocess.run([ADB, "-P", str(self.port), *args], capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=timeout)

    def connect(self, device: FakeAdbd) -> None:
        out = self.adb("connect", device.serial).stdout
        assert out.startswith("connected to"), out
        self.wait_state(device.serial, "device")

    def wait_state(self, serial: str, state: str, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while True:
            listing = self.adb("devices").stdout
            if f"{serial}\t{state}" in listing:
                return
            assert time.monotonic() < deadline, f"{serial} never became {state}:\n{listing}"
            time.sleep(0.1)

    def transport(self, workdir: Path, **kw) -> AdbTransport:
        return AdbTransport(adb=ADB, server_port=self.port, workdir=str(workdir), **kw)


@pytest.fixture
def adb_server(tmp_path, monkeypatch):
    port = _free_port()
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", str(port))  # even a bare `adb` stays on our server
    monkeypatch.delenv("ANDROID_SERIAL", raising=False)
    server = AdbServer(port, home)
    yield server
    subprocess.run([ADB, "-P", str(port), "kill-server"], capture_output=True, stdin=subprocess.DEVNULL, timeout=20)


@pytest.fixture
def device():
    with FakeAdbd() as dev:
        yield dev


@pytest.fixture
def workdir(tmp_path) -> Path:
    return tmp_path / "device fs" / "sdeploy"     # a space on purpose: every path goes through the device shell


@pytest.fixture
def transport(adb_server, device, workdir):
    adb_server.connect(device)
    t = adb_server.transport(workdir)
    yield t
    t.cleanup()


# ------------------------------------------------------------------------------------------ the wire protocol
def test_wire_protocol_with_checksums_for_an_old_host():
    """A pre-2016 host (A_VERSION_MIN) checksums payloads: the device must verify them and drop bad ones."""
    def read(sock):
        return adbd.read_message(sock, verify_checksum=True, max_payload=adbd.MAX_PAYLOAD)

    with FakeAdbd() as dev, socket.create_connection(("127.0.0.1", dev.port), timeout=10) as s:
        s.sendall(adbd.Message(adbd.A_CNXN, adbd.A_VERSION_MIN, 4096, b"host::\0").pack())
        hello = read(s)
        assert hello.command == adbd.A_CNXN and hello.data.startswith(b"device::ro.product.name=sdeploy_test;")
        assert hello.data.endswith(b"features=shell_v2,fixed_push_mkdir")
        s.sendall(adbd.Message(adbd.A_OPEN, 7, 0, b"shell,v2,raw:echo hi; echo oops >&2; exit 3\0").pack())
        okay = read(s)
        assert (okay.command, okay.arg1) == (adbd.A_OKAY, 7)
        data = b""
        while (m := read(s)).command != adbd.A_CLSE:
            assert m.command == adbd.A_WRTE and len(m.data) <= 4096       # honours the host's max payload
            data += m.data
            s.sendall(adbd.Message(adbd.A_OKAY, 7, okay.arg0).pack())   # one WRTE in flight
        packets = {}
        while data:
            pid, n = struct.unpack("<BI", data[:5])
            packets[pid] = packets.get(pid, b"") + data[5:5 + n]
            data = data[5 + n:]
        assert packets == {1: b"hi\n", 2: b"oops\n", 3: b"\x03"}
        bad = bytearray(adbd.Message(adbd.A_OPEN, 8, 0, b"sync:\0").pack())
        bad[16] ^= 1                                                      # data_check field
        s.sendall(bytes(bad))
        assert s.recv(100) == b""                                         # adbd drops the connection


# ------------------------------------------------------------------------------------------------------ basics
@needs_adb
def test_connect_lists_fake_device(adb_server, device, workdir):
    out = adb_server.adb("connect", device.serial).stdout
    assert out.strip() == f"connected to {device.serial}"
    adb_server.wait_state(device.serial, "device")
    assert adb_server.adb("-s", device.serial, "features").stdout.split() == ["shell_v2", "fixed_push_mkdir"]
    t = adb_server.transport(workdir)
    assert t.serial == device.serial                        # the only device: chosen without a serial
    assert t.getprop("ro.product.cpu.abi") == "arm64-v8a"
    assert t.describe() == f"adb:{device.serial}"


@needs_adb
def test_transport_connects_itself_and_disconnects(adb_server, device, workdir):
    t = adb_server.transport(workdir, connect=device.serial)
    assert t.run(["echo", "ok"], timeout=20).stdout == "ok\n"
    t.cleanup()
    assert device.serial not in adb_server.adb("devices").stdout
    assert not workdir.exists()


@needs_adb
def test_push_pull_roundtrip_binary_with_spaces(transport, workdir, tmp_path):
    src = tmp_path / "model file (int8).tflite"
    payload = os.urandom(1_000_003) + bytes(range(256))
    src.write_bytes(payload)
    remote = transport.push(src, "my model.tflite")
    assert remote == f"{workdir}/my model.tflite"
    assert (workdir / "my model.tflite").read_bytes() == payload
    back = tmp_path / "back" / "pulled copy.bin"
    transport.pull(remote, back)
    assert back.read_bytes() == payload
    transport.pull("my model.tflite", tmp_path / "relative.bin")  # relative names are under the work dir
    assert (tmp_path / "relative.bin").read_bytes() == payload
    transport.cleanup()
    assert not workdir.exists()


@needs_adb
def test_pull_missing_file_is_device_error(transport, tmp_path):
    with pytest.raises(DeviceError, match="adb pull failed.*does not exist"):
        transport.pull("nope.txt", tmp_path / "nope.txt")


@needs_adb
def test_exit_code_propagates(transport):
    assert transport.run(["sh", "-c", "exit 7"], timeout=20).returncode == 7
    assert transport.run(["false"], timeout=20).returncode == 1
    assert transport.run(["true"], timeout=20).ok


@needs_adb
def test_stdout_and_stderr_are_separate(transport):
    r = transport.run(["sh", "-c", "echo to-out; echo to-err >&2; printf 'no newline'"], timeout=20)
    assert (r.returncode, r.stdout, r.stderr) == (0, "to-out\nno newline", "to-err\n")


@needs_adb
def test_arguments_arrive_literally(transport):
    args = ["a; echo pwned", "$HOME", "`id`", "it's", "two  spaces", "*", ""]
    r = transport.run(["printf", "[%s]\\n", *args], timeout=20)
    assert r.stdout.splitlines() == [f"[{a}]" for a in args]
    assert "pwned\n" not in r.stdout.replace("[a; echo pwned]", "")


@needs_adb
def test_commands_run_in_workdir(transport, workdir):
    assert transport.run(["pwd"], timeout=20).stdout.strip() == str(workdir)


@needs_adb
def test_device_without_shell_v2_still_reports_exit_codes(adb_server, workdir):
    with FakeAdbd(features=("fixed_push_mkdir",)) as dev:   # an old phone: legacy raw shell, no exit packet
        adb_server.connect(dev)
        t = adb_server.transport(workdir, serial=dev.serial)
        r = t.run(["sh", "-c", "echo out; exit 5"], timeout=20)
        assert (r.returncode, r.stdout) == (5, "out\n")
        t.cleanup()


# ------------------------------------------------------------------------------------------- device selection
@needs_adb
def test_no_device_attached(adb_server, workdir):
    with pytest.raises(DeviceError, match="no Android device attached") as ei:
        adb_server.transport(workdir).run(["true"], timeout=20)
    assert "USB debugging" in ei.value.one_line()
    assert ei.value.exit_code == 3


@needs_adb
def test_unknown_serial(adb_server, device, workdir):
    adb_server.connect(device)
    with pytest.raises(DeviceError, match=rf"device 10.9.9.9:5555 not found \(attached: {device.serial} \(device\)"):
        adb_server.transport(workdir, serial="10.9.9.9:5555").run(["true"], timeout=20)


@needs_adb
def test_unauthorized_via_connect(adb_server, workdir):
    with FakeAdbd(authorized=False) as dev:
        with pytest.raises(DeviceError, match="unauthorized") as ei:
            adb_server.transport(workdir, connect=dev.serial).run(["true"], timeout=20)
        assert "RSA prompt" in ei.value.one_line()


@needs_adb
def test_unauthorized_listed_device(adb_server, workdir):
    with FakeAdbd(authorized=False) as dev:
        assert "failed to authenticate" in adb_server.adb("connect", dev.serial).stdout
        adb_server.wait_state(dev.serial, "unauthorized")
        with pytest.raises(DeviceError, match=f"device {dev.serial} is unauthorized"):
            adb_server.transport(workdir).push(Path(__file__), "x.py")


@needs_adb
def test_two_devices_need_a_serial(adb_server, workdir):
    with FakeAdbd() as a, FakeAdbd() as b:
        adb_server.connect(a)
        adb_server.connect(b)
        with pytest.raises(DeviceError, match="several Android devices") as ei:
            adb_server.transport(workdir).run(["true"], timeout=20)
        text = ei.value.one_line()
        assert a.serial in text and b.serial in text and "--serial" in text
        t = adb_server.transport(workdir, serial=b.serial)
        assert t.run(["true"], timeout=20).ok
        assert any("true" in c for c in b.commands) and not any("true" in c for c in a.commands)
        t.cleanup()


@needs_adb
def test_connect_to_dead_port_checks_text(adb_server, workdir):
    port = _free_port()                                  # nothing listens there: adb connect still exits 0
    with pytest.raises(DeviceError, match=f"adb connect 127.0.0.1:{port} failed: failed to connect"):
        adb_server.transport(workdir, connect=f"127.0.0.1:{port}").run(["true"], timeout=20)


def test_missing_adb_client_is_user_error(tmp_path):
    t = AdbTransport(adb=str(tmp_path / "no-such-adb"), workdir=str(tmp_path / "w"))
    with pytest.raises(UserError, match="adb client not found") as ei:
        t.run(["true"], timeout=5)
    assert "apt install adb" in ei.value.one_line()


@pytest.mark.parametrize("bad", ["relative/dir", "/", "/data/local/tmp", "/data/local/tmp/"])
def test_dangerous_workdir_rejected(bad):
    with pytest.raises(UserError, match="dedicated directory"):
        AdbTransport(workdir=bad)


# ----------------------------------------------------------------------------------------------------- faults
@needs_adb
def test_connection_dropped_mid_run(transport, device):
    transport.run(["true"], timeout=20)                    # device selected, workdir made
    killer = threading.Thread(target=lambda: (device.wait_for_command("sleep 5"), time.sleep(0.3),
                                              device.abort_connections()))
    killer.start()
    t0 = time.monotonic()
    with pytest.raises(DeviceError, match="connection to device .* lost"):
        transport.run(["sh", "-c", "echo started; sleep 5; echo finished"], timeout=30)
    assert time.monotonic() - t0 < 4
    killer.join()
    transport.cleanup()                                    # quiet after a loss: nothing to reach


@needs_adb
def test_connection_dropped_during_output(adb_server, workdir):
    with FakeAdbd(drop_after_bytes=200_000) as dev:
        adb_server.connect(dev)
        t = adb_server.transport(workdir)
        with pytest.raises(DeviceError, match="lost"):
            t.run(["sh", "-c", "head -c 3000000 /dev/zero | tr '\\0' x; sleep 2"], timeout=30)


@needs_adb
def test_device_offline_after_drop(transport, device, adb_server):
    transport.run(["true"], timeout=20)
    device.stop()                                          # adbd gone for good: the server marks it offline
    with pytest.raises(DeviceError, match="lost"):
        transport.run(["true"], timeout=20)


@needs_adb
def test_timeout_kills_remote_command(transport, device):
    transport.run(["true"], timeout=20)
    t0 = time.monotonic()
    with pytest.raises(DeviceError, match="did not finish within 1 s"):
        transport.run(["sleep", "30"], timeout=1)
    assert time.monotonic() - t0 < 5
    deadline = time.monotonic() + 5
    while device._procs and time.monotonic() < deadline:   # the adb server closed the stream -> killed
        time.sleep(0.1)
    assert not device._procs
    assert transport.run(["echo", "still here"], timeout=20).stdout == "still here\n"


# --------------------------------------------------------------------------------------------------- aarch64
@needs_adb
@pytest.mark.aarch64
def test_exec_wrapper_runs_in_aarch64_userland(adb_server, tmp_path):
    if not (AARCH64_ROOT.is_dir() and AARCH64_EXEC.is_file()):
        if os.environ.get("SDEPLOY_REQUIRE_AARCH64") == "1":
            pytest.fail(f"SDEPLOY_REQUIRE_AARCH64=1 but {AARCH64_ROOT} or {AARCH64_EXEC} is missing")
        pytest.skip("no aarch64 sysroot (scripts/build_aarch64_root.sh) or scripts/aarch64_exec.sh")
    with FakeAdbd(exec_wrapper=[str(AARCH64_EXEC)]) as dev:
        adb_server.connect(dev)
        t = adb_server.transport(tmp_path / "aarch64 work")
        r = t.run(["python3", "-c", "import platform; print(platform.machine())"], timeout=300)
        assert (r.returncode, r.stdout.strip()) == (0, "aarch64"), r
        assert t.run(["uname", "-m"], timeout=60).stdout.strip() == "aarch64"
        t.cleanup()
