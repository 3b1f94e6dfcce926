"""LocalTransport: the same contract as ssh/adb (work dir, push/run/pull, exit codes, timeouts) on this machine."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from shufflenet_deploy.devices.local import LocalTransport
from shufflenet_deploy.errors import DeviceError, UserError


def test_round_trip_and_cleanup(tmp_path):
    src = tmp_path / "a model 'x\".bin"
    src.write_bytes(b"\0\1\2" * 1000)
    with LocalTransport() as t:
        remote = t.push(src, "sub dir/it's.bin")
        assert remote == str(Path(t.workdir, "sub dir/it's.bin"))
        args = ["; rm -rf /", "$(id)", "a'b\"c", "", "*"]
        r = t.run([sys.executable, "-c", "import os, sys; print(os.getcwd()); print(sys.argv[1:])", *args],
                  timeout=60)
        assert r.ok, r.stderr
        cwd, argv = r.stdout.splitlines()
        assert cwd == t.workdir and argv == repr(args)
        t.pull("sub dir/it's.bin", tmp_path / "out" / "back.bin")
        assert (tmp_path / "out" / "back.bin").read_bytes() == src.read_bytes()
        t.pull(remote, tmp_path / "abs.bin")
        workdir = Path(t.workdir)
        assert workdir.is_dir()
    assert not workdir.exists()


def test_exit_codes_streams_and_missing_commands():
    with LocalTransport() as t:
        r = t.run(["sh", "-c", "echo out; echo err >&2; exit 42"], timeout=30)
        assert (r.returncode, r.stdout, r.stderr) == (42, "out\n", "err\n")
        assert t.run(["no-such-command-xyz"], timeout=30).returncode == 127
        assert t.run(["./not-here"], timeout=30).returncode == 127
        assert t.run(["cat"], timeout=30).stdout == ""          # stdin is empty, never the terminal


def test_timeout_is_a_device_error():
    with LocalTransport() as t:
        start = time.monotonic()
        with pytest.raises(DeviceError, match=r"`sleep` did not finish within 1 s"):
            t.run(["sleep", "30"], timeout=1)
        assert time.monotonic() - start < 10


def test_workdir_root_and_lazy_creation(tmp_path):
    root = tmp_path / "profile workdir"
    t = LocalTransport(workdir_root=root)
    assert not root.exists()                                    # nothing on disk until used
    assert Path(t.workdir).parent == root
    t.cleanup()
    assert root.is_dir() and list(root.iterdir()) == []         # removes only its own dir
    t.cleanup()                                                 # twice is fine


def test_bad_names_and_missing_files(tmp_path):
    src = tmp_path / "f"
    src.write_text("x")
    with LocalTransport() as t:
        for bad in ("/etc/passwd", "../x", "a/../../x", ""):
            with pytest.raises(UserError):
                t.push(src, bad)
        with pytest.raises(UserError):
            t.push(tmp_path / "missing", "x")
        with pytest.raises(DeviceError):
            t.pull("missing.json", tmp_path / "m.json")
        with pytest.raises(UserError):
            t.run([], timeout=1)
