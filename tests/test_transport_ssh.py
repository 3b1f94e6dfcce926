"""SSHTransport against a real sshd on 127.0.0.1 with the real OpenSSH client.

Why real: quoting through a remote shell and the client's failure texts (auth, host keys, dropped links) are
exactly what a fake would get wrong. Sessions run as the current user on this host, so the tests can look at the
remote side directly on the shared filesystem.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from servers.sshd import descendants, free_port, keygen
from shufflenet_deploy.devices.ssh import SSHTransport
from shufflenet_deploy.errors import DeviceError, UserError

pytestmark = pytest.mark.ssh

NASTY = ["; rm -rf /", "$(touch pwned)", "`touch pwned2`", "a'b\"c", "  two  spaces ", "*", "~", "$HOME",
         "line\nbreak", "--", "-n", "back\\slash", "| cat /etc/passwd", "&& exit 9", ""]


def nul_split(text: str) -> list[str]:
    return text.split("\0")[:-1]


def test_round_trip_with_hostile_names_and_arguments(sshd, tmp_path):
    src = tmp_path / "my model 'v1\".tflite"
    payload = os.urandom(300_000) + b"\0\n\r\xff"
    src.write_bytes(payload)
    canary = tmp_path / "canary"
    canary.write_text("still here")
    with sshd.transport() as t:
        remote_name = "sub dir/it's \"x\" $(id).bin"
        remote = t.push(src, remote_name)
        assert remote == f"{t.workdir}/{remote_name}"
        assert Path(remote).read_bytes() == payload            # same machine: look at the remote side directly

        args = NASTY + [f"; rm -f {canary}"]
        result = t.run(["printf", "%s\\0", *args], timeout=30)
        assert result.returncode == 0, result.stderr
        assert nul_split(result.stdout) == args                # every argument arrived literally
        assert canary.exists()
        assert not (Path(t.workdir) / "pwned").exists() and not (Path(t.workdir) / "pwned2").exists()

        listing = t.run(["ls", "-A", "sub dir"], timeout=30)     # cwd is the work dir; no helper files in it
        assert listing.stdout.splitlines() == [remote_name.split("/", 1)[1]]

        back = tmp_path / "out" / "back.bin"
        t.pull(remote_name, back)                              # relative to the work dir
        assert back.read_bytes() == payload
        t.pull(remote, tmp_path / "abs.bin")                   # absolute path as returned by push
        assert (tmp_path / "abs.bin").read_bytes() == payload
        workdir = Path(t.workdir)
    assert not workdir.exists(), "cleanup (context exit) removes the work dir"


def test_exit_codes_and_streams(sshd):
    with sshd.transport() as t:
        r = t.run(["sh", "-c", "echo out; echo err >&2; exit 42"], timeout=30)
        assert (r.returncode, r.stdout, r.stderr) == (42, "out\n", "err\n")
        assert not r.ok
        r = t.run(["sh", "-c", "exit 255"], timeout=30)       # a real 255 from the command is not an ssh failure
        assert r.returncode == 255
        r = t.run(["true"], timeout=30)
        assert r.ok and r.stdout == "" and r.stderr == ""
        r = t.run(["no-such-command-xyz"], timeout=30)
        assert r.returncode == 127
        r = t.run(["cat"], timeout=30)                         # stdin is empty, never the caller's terminal
        assert r.ok and r.stdout == ""


def test_timeout_raises_and_kills_the_remote_command(sshd):
    with sshd.transport() as t:
        start = time.monotonic()
        with pytest.raises(DeviceError) as info:
            t.run(["sleep", "47"], timeout=2)
        assert time.monotonic() - start < 20
        msg = info.value.one_line()
        assert "`sleep`" in msg and "within 2 s" in msg and sshd.host in msg
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _sleepers(sshd, "47"):
            time.sleep(0.2)
        assert not _sleepers(sshd, "47"), "the remote command outlived its timeout"
        assert t.run(["echo", "ok"], timeout=30).stdout == "ok\n"   # the transport is still usable


def _sleepers(server, arg: str) -> list[int]:
    found = []
    for pid in descendants(server.proc.pid):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cmd[:2] == [b"sleep", arg.encode()]:
            found.append(pid)
    return found


def test_unreachable_port():
    t = SSHTransport("127.0.0.1", port=free_port(), config_file="/dev/null", connect_timeout=5)
    with pytest.raises(DeviceError) as info:
        t.run(["true"], timeout=30)
    assert info.value.exit_code == 3
    assert "cannot reach" in info.value.one_line() and "Connection refused" in info.value.one_line()
    t.cleanup()                                               # nothing was created: no error


def test_wrong_key_is_an_auth_failure(sshd, tmp_path):
    other = keygen(tmp_path / "other_key", "not-authorised")
    with pytest.raises(DeviceError) as info:
        sshd.transport(key=str(other)).run(["true"], timeout=30)
    assert "authentication" in info.value.message and "Permission denied" in info.value.message
    assert "authorized_keys" in info.value.hint


def test_missing_key_file_is_a_user_error(sshd, tmp_path):
    with pytest.raises(UserError, match="not found"):
        sshd.transport(key=str(tmp_path / "nope")).run(["true"], timeout=30)


def test_changed_host_key(sshd, tmp_path):
    impostor = keygen(tmp_path / "impostor_host_key", "impostor")
    known = tmp_path / "known_hosts"
    known.write_text(f"[{sshd.host}]:{sshd.port} " + Path(f"{impostor}.pub").read_text())
    with pytest.raises(DeviceError) as info:
        sshd.transport(known_hosts=str(known)).run(["true"], timeout=30)
    err = info.value
    assert "has changed" in err.message and str(known) in err.message
    assert f"ssh-keygen -R '[{sshd.host}]:{sshd.port}'" in err.hint


def test_unknown_host_key_with_strict_checking(sshd, tmp_path):
    known = tmp_path / "empty_known_hosts"
    known.write_text("")
    with pytest.raises(DeviceError) as info:
        sshd.transport(known_hosts=str(known)).run(["true"], timeout=30)
    assert "unknown" in info.value.message and "ssh-keyscan" in info.value.hint
    # strict_host_key_checking=False is trust-on-first-use: accepted and recorded ...
    with sshd.transport(known_hosts=str(known), strict_host_key_checking=False) as t:
        assert t.run(["echo", "hi"], timeout=30).stdout == "hi\n"
    assert f"[{sshd.host}]:{sshd.port}" in known.read_text()


def test_connection_dropped_mid_run(sshd_factory):
    server = sshd_factory()
    t = server.transport()
    outcome = {}

    def work():
        try:
            outcome["result"] = t.run(["sleep", "53"], timeout=60)
        except Exception as exc:                               # noqa: BLE001 - handed to the main thread
            outcome["error"] = exc

    thread = threading.Thread(target=work)
    thread.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not _sleepers(server, "53"):
        time.sleep(0.1)
    assert _sleepers(server, "53"), "the remote command never started"
    server.kill_all()                                          # the board loses power
    thread.join(30)
    assert not thread.is_alive()
    err = outcome.get("error")
    assert isinstance(err, DeviceError), outcome
    assert "dropped" in err.message and "`sleep`" in err.message
    t.cleanup()                                                # stays quiet after a lost connection
    # The "device" is this host: remove what the cut session left behind, as a rebooted board would.
    shutil.rmtree(t.workdir, ignore_errors=True)
    for leftover in Path(t.workdir).parent.glob(Path(t.workdir).name + ".run-*.pid"):
        leftover.unlink()


def test_reconnects_after_server_restart(sshd_factory, tmp_path):
    server = sshd_factory()
    with server.transport() as t:
        src = tmp_path / "f.txt"
        src.write_text("x")
        t.push(src, "f.txt")
        server.restart()                                       # a reboot between two commands
        assert t.run(["cat", "f.txt"], timeout=30).stdout == "x"


def test_pull_of_missing_file(sshd, tmp_path):
    with sshd.transport() as t:
        with pytest.raises(DeviceError, match="No such file"):
            t.pull("missing.json", tmp_path / "x.json")


def test_push_rejects_names_outside_the_workdir(sshd, tmp_path):
    src = tmp_path / "f"
    src.write_text("x")
    t = sshd.transport()
    for bad in ("/etc/passwd", "../escape", "a/../../b", ""):
        with pytest.raises(UserError):
            t.push(src, bad)


def test_command_line_is_batch_and_strict():
    t = SSHTransport("board.local", user="pi", port=2222, key="~/.ssh/id_pi", known_hosts="/k", extra_options=["-v"])
    argv = t.ssh_argv()
    joined = " ".join(argv)
    for opt in ("BatchMode=yes", "StrictHostKeyChecking=yes", "UserKnownHostsFile=/k", "ConnectTimeout=10",
                "IdentitiesOnly=yes"):
        assert opt in joined
    assert argv[-2:] == ["--", "board.local"] and "-v" in argv and os.path.expanduser("~/.ssh/id_pi") in argv
    assert t.describe() == "ssh:pi@board.local:2222"
    with pytest.raises(UserError):
        SSHTransport("-oProxyCommand=evil")


def test_plain_ssh_client_agrees(sshd):
    """Sanity check of the fixture itself: the stock client logs in with the same key and known_hosts."""
    done = subprocess.run(sshd.ssh_argv() + ["echo", "fixture-ok"], capture_output=True, text=True, timeout=30)
    assert done.stdout == "fixture-ok\n", done.stderr


def test_user_ssh_config_and_proxyjump_are_honoured(sshd_factory, tmp_path):
    """The reason for using the OpenSSH client: Host aliases, ports, keys and ProxyJump come from ssh_config."""
    server = sshd_factory(extra_config=["AllowTcpForwarding local"])
    config = tmp_path / "ssh_config"
    common = (f"  HostName {server.host}\n  Port {server.port}\n  User {server.user}\n  IdentityFile {server.key}\n"
              f"  IdentitiesOnly yes\n  UserKnownHostsFile {server.known_hosts}\n")
    config.write_text(f"Host jumpbox\n{common}\nHost board\n{common}  ProxyJump jumpbox\n")
    t = SSHTransport("board", config_file=str(config), connect_timeout=10)     # no port/user/key given here
    assert "-p" not in t.ssh_argv() and "-l" not in t.ssh_argv()
    with t:
        assert t.run(["echo", "via jump"], timeout=60).stdout == "via jump\n"


def _many_files(tmp_path: Path, count: int) -> list[tuple[Path, str]]:
    files = []
    for i in range(count):
        src = tmp_path / "many" / f"op {i} 'q'.tflite"
        src.parent.mkdir(exist_ok=True)
        src.write_bytes(os.urandom(1000 + i * 37) + b"\0\n")
        files.append((src, f"m{i:04d}_op {i} 'q'.tflite"))
    return files


def test_push_many_sends_every_file_in_one_session(sshd_factory, tmp_path):
    count = tmp_path / "sessions"
    server = sshd_factory(forced_command=f"echo s >> {count}; exec /bin/sh -c \"$SSH_ORIGINAL_COMMAND\"")
    files = _many_files(tmp_path, 40)
    with server.transport() as t:
        t.run(["true"], timeout=30)
        before = len(count.read_text().split())
        remote = t.push_many(files)
        assert len(count.read_text().split()) - before == 1   # one handshake for forty files
        assert remote == [f"{t.workdir}/{name}" for _, name in files]
        for (src, _), path in zip(files, remote):
            assert Path(path).read_bytes() == src.read_bytes()
        with pytest.raises(UserError, match="relative path"):
            t.push_many([files[0], (files[1][0], "../escape.bin")])
        assert not (Path(t.workdir).parent / "escape.bin").exists()


def test_push_many_without_tar_on_the_device_pushes_one_by_one(sshd_factory, tmp_path):
    """A board whose shell has no tar (a minimal image) still gets every file, one session each."""
    tools = tmp_path / "no-tar-bin"
    tools.mkdir()
    for name in ("sh", "mkdir", "cat", "rm", "printf", "true"):
        found = shutil.which(name)
        if found:
            (tools / name).symlink_to(found)
    count = tmp_path / "sessions"
    server = sshd_factory(forced_command=f"echo s >> {count}; exec env PATH={tools} /bin/sh -c "
                                         f"\"$SSH_ORIGINAL_COMMAND\"")
    files = _many_files(tmp_path, 3)
    with server.transport() as t:
        remote = t.push_many(files)
        assert len(count.read_text().split()) == 1 + 3   # the tar attempt, then one session per file
        for (src, _), path in zip(files, remote):
            assert Path(path).read_bytes() == src.read_bytes()
