"""Devices: named profiles (TOML) and the transports that reach them (local, ssh, adb)."""
