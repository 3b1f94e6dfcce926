"""Device registry: built-ins, user overrides field by field, file lookup order, clear errors."""
from __future__ import annotations

import re
import sys

import pytest

from shufflenet_deploy.devices.profile import parse_cpus
from shufflenet_deploy.devices.registry import get_device, load_registry
from shufflenet_deploy.errors import UserError


@pytest.fixture(autouse=True)
def isolated_config(tmp_path, monkeypatch):
    """No real ~/.config or $SDEPLOY_DEVICES leaks into these tests."""
    monkeypatch.delenv("SDEPLOY_DEVICES", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))


def test_builtins():
    reg = load_registry()
    assert {"local", "pixel", "rpi"} <= set(reg)
    local, pixel, rpi = reg["local"], reg["pixel"], reg["rpi"]
    assert local.transport == "local" and local.python_argv == [sys.executable]
    assert pixel.transport == "adb" and pixel.benchmark_binary is None and pixel.threads == [1, 4]
    assert pixel.affinity_cpus() == [4, 5, 6, 7] and pixel.affinity_mask() == "f0"
    assert rpi.transport == "ssh" and rpi.link.host == "raspberrypi.local" and rpi.link.user == "pi"
    assert rpi.threads == [1, 4] and rpi.python_argv == ["python3"] and rpi.link.strict_host_key_checking is True


def test_user_file_overrides_field_by_field_and_adds(tmp_path):
    f = tmp_path / "devices.toml"
    f.write_text('[devices.rpi]\nhost = "10.0.0.5"\nthreads = 2\n\n'
                 '[devices.board]\ntransport = "ssh"\nhost = "b.lan"\nport = 2222\naffinity = "2-3"\n'
                 'python = "/opt/venv/bin/python -u"\npeak_gmacs = {fp32 = 12.5, int8 = 40.0}\n')
    reg = load_registry(f)
    assert reg["rpi"].link.host == "10.0.0.5" and reg["rpi"].link.user == "pi"  # user kept from the built-in
    assert reg["rpi"].threads == [2]
    assert "built-in" in reg["rpi"].source and str(f) in reg["rpi"].source
    board = reg["board"]
    assert board.link.port == 2222 and board.affinity_cpus() == [2, 3] and board.affinity_mask() == "c"
    assert board.python_argv == ["/opt/venv/bin/python", "-u"]
    assert board.peak_gmacs == {"fp32": 12.5, "int8": 40.0}


def test_lookup_order(tmp_path, monkeypatch):
    xdg = tmp_path / "xdg" / "sdeploy" / "devices.toml"
    xdg.parent.mkdir(parents=True)
    xdg.write_text('[devices.rpi]\nhost = "from-xdg"\n')
    assert get_device("rpi").link.host == "from-xdg"
    env = tmp_path / "env.toml"
    env.write_text('[devices.rpi]\nhost = "from-env"\n')
    monkeypatch.setenv("SDEPLOY_DEVICES", str(env))
    assert get_device("rpi").link.host == "from-env"
    explicit = tmp_path / "explicit.toml"
    explicit.write_text('[devices.rpi]\nhost = "from-flag"\n')
    assert get_device("rpi", explicit).link.host == "from-flag"


def test_missing_explicit_file(tmp_path, monkeypatch):
    with pytest.raises(UserError, match="devices file not found"):
        load_registry(tmp_path / "nope.toml")
    monkeypatch.setenv("SDEPLOY_DEVICES", str(tmp_path / "nope.toml"))
    with pytest.raises(UserError, match="nope.toml"):
        load_registry()


def test_unknown_device_suggests_close_names():
    with pytest.raises(UserError) as err:
        get_device("pixle")
    line = err.value.one_line()
    assert "unknown device 'pixle'" in line and "did you mean pixel" in line and "local, pixel, rpi" in line
    assert err.value.exit_code == 2


def test_bad_toml_names_file_and_line(tmp_path):
    f = tmp_path / "devices.toml"
    f.write_text('[devices.rpi]\nhost = "ok"\nport = = 3\n')
    with pytest.raises(UserError) as err:
        load_registry(f)
    assert str(f) in err.value.message and "line 3" in err.value.message


@pytest.mark.parametrize("body, match", [
    ('[devices.x]\ntransport = "serial"\n', "transport must be one of"),
    ('[devices.x]\nhots = "a"\n', "did you mean 'host'"),
    ('[devices.x]\ntransport = "ssh"\nport = "22"\n', "port must be a port number"),
    ('[devices.x]\ntransport = "ssh"\nport = 70000\n', "port must be a port number"),
    ('[devices.x]\npython = ["python3"]\n', "python must be a string"),
    ('[devices.x]\ntransport = "ssh"\nconnect_timeout = inf\n', "connect_timeout must be a number of seconds"),
    ('[devices.x]\ntransport = "ssh"\nconnect_timeout = nan\n', "connect_timeout must be a number of seconds"),
    ('[devices.x]\ntransport = "ssh"\nssh_options = "-v"\n', "ssh_options must be a list of strings"),
    # each transport takes its own fields: another transport's is named as such
    ('[devices.x]\ntransport = "ssh"\nhost = "b"\nserial = "abc"\n', "serial is an adb field; this device's "
                                                                      "transport is ssh"),
    ('[devices.x]\ntransport = "adb"\nhost = "b"\n', "host is an ssh field; this device's transport is adb"),
    ('[devices.x]\nport = 22\n', "port is an ssh field; this device's transport is local"),
    ('[devices.x]\npeak_gmacs = {fp32 = -5}\n', "peak_gmacs must be a table"),
    ('[devices.x]\nthreads = [1, 100000]\n', "threads must be a list of positive integers"),
    ('[devices.x]\nthreads = [0]\n', "threads must be a list of positive integers"),
    ('[devices.x]\naffinity = "cpu4"\n', "bad CPU affinity"),
    ('[device.x]\nhost = "a"\n', r"expected only \[devices.NAME\]"),
])
def test_bad_fields(tmp_path, body, match):
    f = tmp_path / "devices.toml"
    f.write_text(body)
    with pytest.raises(UserError) as err:
        load_registry(f)
    assert re.search(match, err.value.one_line())


def test_devices_file_that_is_not_text_or_not_a_file(tmp_path):
    import os

    binary = tmp_path / "random.toml"
    binary.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(UserError, match="not UTF-8 text"):
        load_registry(binary)
    fifo = tmp_path / "pipe.toml"
    os.mkfifo(fifo)
    with pytest.raises(UserError, match="not a regular file"):  # never blocks on the pipe
        load_registry(fifo)


def test_changing_a_built_ins_transport_drops_its_old_way_to_reach_it(tmp_path):
    f = tmp_path / "devices.toml"
    f.write_text('[devices.rpi]\ntransport = "adb"\nserial = "R5CT"\n')  # the built-in rpi is ssh with a host
    rpi = load_registry(f)["rpi"]
    assert rpi.transport == "adb" and rpi.target() == "R5CT" and rpi.threads == [1, 4]  # threads kept


def test_parse_cpus():
    assert parse_cpus("4-7") == [4, 5, 6, 7]
    assert parse_cpus("0,2,5-6") == [0, 2, 5, 6]
    assert parse_cpus("f0") == parse_cpus("0xF0") == [4, 5, 6, 7]
    assert parse_cpus("10") == [10]  # no hex letter, no 0x: a CPU list


def test_transport_factory_is_lazy_and_local_works():
    transport = get_device("local").transport_factory()
    try:
        assert transport.run(["true"], timeout=10).ok
    finally:
        transport.cleanup()


def test_ssh_without_host_is_a_user_error(tmp_path):
    f = tmp_path / "devices.toml"
    f.write_text('[devices.x]\ntransport = "ssh"\n')
    with pytest.raises(UserError, match="has no host"):
        get_device("x", f).transport_factory()


def test_groups_name_several_devices_in_order_each_once(tmp_path):
    from shufflenet_deploy.devices.registry import device_names, resolve_devices

    f = tmp_path / "d.toml"
    f.write_text('[devices.rpi4]\ntransport = "ssh"\nhost = "pi4"\n[devices.rpi5]\ntransport = "ssh"\nhost = "pi5"\n'
                 '[groups]\nlab = ["rpi4", "rpi5"]\nall = ["lab-not-a-device"]\n')
    assert resolve_devices("lab,local,rpi5", f) == ["rpi4", "rpi5", "local"]
    assert device_names("lab", f) == ["rpi4", "rpi5"] and device_names("rpi4", f) == ["rpi4"]
    with pytest.raises(UserError, match="unknown device 'lab-not-a-device'"):
        resolve_devices("all", f)


def test_a_group_that_is_not_a_list_of_names_is_refused(tmp_path):
    from shufflenet_deploy.devices.registry import load_groups

    f = tmp_path / "d.toml"
    f.write_text('[groups]\nlab = "rpi4"\n')
    with pytest.raises(UserError, match=r"\[groups\] lab must be a list of device names"):
        load_groups(f)
