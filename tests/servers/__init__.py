"""Real servers and targets the tests run against (sshd on 127.0.0.1, the qemu aarch64 root).

Helpers only: the pytest fixtures that start and stop them live in tests/conftest.py.
"""
