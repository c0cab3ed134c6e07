"""A thin, strict wrapper around ``adb``: pick a device, push files, run shell commands, describe the phone.

Every failure is one :class:`~nse_hw.errors.NseError` line: no adb on PATH, no device or several without a
serial, an unauthorised or offline device, or a connection lost mid-run (:class:`ConnectionLost`, which the
phone profiler turns into "measured entries are saved; run again to resume").

``adb shell`` joins its arguments with spaces and hands them to the phone's ``sh``, so every command here is
one string whose words were quoted with :func:`shlex.quote`. Old adb versions always exit 0 from ``shell``;
we append ``; echo __NSE_RC=$?`` and read the command's status from the output instead.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nse_hw.errors import NseError

log = logging.getLogger(__name__)

_RC = re.compile(r"__NSE_RC=(\d+)\s*$")
_LOST = ("not found", "offline", "no devices", "closed", "protocol fault", "connection reset", "still connecting",
         "device disconnected", "broken pipe")
CPU_QUERY = (
    "for c in /sys/devices/system/cpu/cpu[0-9]*; do f=$c/cpufreq; "
    "echo \"${c##*/} $(cat $f/scaling_governor 2>/dev/null || echo -) $(cat $f/scaling_cur_freq 2>/dev/null "
    "|| echo -) $(cat $f/scaling_min_freq 2>/dev/null || echo -) $(cat $f/scaling_max_freq 2>/dev/null "
    "|| echo -) $(cat $f/cpuinfo_max_freq 2>/dev/null || echo -)\"; done"
)
PROPS = {"model": "ro.product.model", "manufacturer": "ro.product.manufacturer",
         "android": "ro.build.version.release", "sdk": "ro.build.version.sdk", "platform": "ro.board.platform",
         "abi": "ro.product.cpu.abi"}


class ConnectionLost(NseError):
    """adb lost the device in the middle of a run."""


class CommandFailed(NseError):
    """A shell command on the phone exited non-zero; ``output`` holds what it printed."""

    def __init__(self, message: str, output: str) -> None:
        super().__init__(message)
        self.output = output


def find_adb(adb: str | None = None) -> str:
    """The adb executable: ``adb`` argument, else ``$ADB``, else ``adb`` on PATH."""
    name = adb or os.environ.get("ADB") or "adb"
    path = shutil.which(name)
    if path is None:
        raise NseError(f"no adb found ({name!r} is not on PATH); install Android platform-tools "
                       "(e.g. apt install adb) or pass --adb PATH")
    return path


def _first_line(text: str) -> str:
    return next((ln.strip() for ln in text.splitlines() if ln.strip()), "(no output)")


def _raw(args: list[str], *, timeout: float) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise ConnectionLost(f"adb did not answer within {timeout:.0f} s ({' '.join(args[1:3])} ...)") from None
    except OSError as exc:
        raise NseError(f"cannot run {args[0]}: {exc.strerror or exc}") from None


def list_devices(exe: str, *, timeout: float = 30) -> dict[str, str]:
    """``adb devices``: serial -> state (``device``, ``unauthorized``, ``offline``, ...)."""
    res = _raw([exe, "devices"], timeout=timeout)
    if res.returncode != 0:
        raise NseError(f"`adb devices` failed: {_first_line(res.stderr + res.stdout)}")
    out: dict[str, str] = {}
    for line in res.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and not line.startswith(("List of devices", "*")):
            out[parts[0]] = parts[1]
    return out


def _state_error(serial: str, state: str) -> NseError:
    if state == "unauthorized":
        return NseError(f"device {serial} is unauthorised: unlock the phone, accept the 'Allow USB debugging' "
                        "prompt, then run again")
    return NseError(f"device {serial} is {state}, not ready (reconnect the cable or run `adb reconnect`)")


@dataclass
class Adb:
    """One attached device. Build it with :func:`connect`."""

    exe: str
    serial: str
    timeout_s: float = 900.0

    def run(self, args: list[str], *, timeout: float | None = None) -> str:
        """``adb -s SERIAL ARGS``; adb-level failures become :class:`ConnectionLost` or :class:`NseError`."""
        res = _raw([self.exe, "-s", self.serial, *args], timeout=timeout or self.timeout_s)
        if res.returncode == 0:
            return res.stdout
        msg = _first_line(res.stderr + "\n" + res.stdout)
        low = msg.lower()
        if "unauthorized" in low:
            raise _state_error(self.serial, "unauthorized")
        if any(s in low for s in _LOST):
            raise ConnectionLost(f"lost the connection to {self.serial} during `adb {args[0]}`: {msg}")
        raise NseError(f"`adb {args[0]}` failed on {self.serial} (exit {res.returncode}): {msg}")

    def shell(self, command: str, *, check: bool = True, timeout: float | None = None) -> str:
        """Run one (already quoted) command line in the phone's shell; its output without the status marker."""
        out = self.run(["shell", f"{command}; echo __NSE_RC=$?"], timeout=timeout)
        out = out.replace("\r\n", "\n").rstrip()
        m = _RC.search(out)
        if m is None:  # the marker is always printed unless the connection dropped mid-command
            raise ConnectionLost(f"lost the connection to {self.serial} while running: {command[:80]}")
        body, rc = out[: m.start()], int(m.group(1))
        if check and rc != 0:
            raise CommandFailed(f"`{command[:80]}` exited {rc} on {self.serial}: {_first_line(body)}", body)
        return body

    def push(self, local: str | Path, remote: str) -> None:
        if not Path(local).is_file():
            raise NseError(f"cannot push {local}: no such file")
        self.run(["push", str(local), remote])

    def getprop(self, name: str) -> str:
        return self.shell(f"getprop {shlex.quote(name)}").strip()

    def exists(self, remote: str, *, executable: bool = False) -> bool:
        flag = "-x" if executable else "-f"
        return self.shell(f"[ {flag} {shlex.quote(remote)} ] && echo yes || echo no").strip().endswith("yes")


def connect(*, serial: str | None = None, adb: str | None = None) -> Adb:
    """The device to use: ``serial``, or the only one attached; every other situation is a one-line error."""
    exe = find_adb(adb)
    devices = list_devices(exe)
    if not devices:
        raise NseError("no Android device attached (`adb devices` lists none); connect a phone with USB "
                       "debugging on")
    if serial is None:
        if len(devices) > 1:
            raise NseError(f"{len(devices)} devices attached ({', '.join(devices)}); pick one with --serial")
        serial = next(iter(devices))
    if serial not in devices:
        raise NseError(f"device {serial} is not attached; attached: {', '.join(devices)}")
    if devices[serial] != "device":
        raise _state_error(serial, devices[serial])
    return Adb(exe, serial)


def _cpus(text: str) -> dict[str, dict[str, Any]]:
    cpus: dict[str, dict[str, Any]] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 6 and parts[0].startswith("cpu"):
            gov, cur, lo, hi, hw = parts[1:]
            cpus[parts[0]] = {"governor": gov, **{k: int(v) if v.isdigit() else None for k, v in
                                                   (("cur_khz", cur), ("min_khz", lo), ("max_khz", hi),
                                                    ("hw_max_khz", hw))}}
    return cpus


def describe_phone(dev: Adb) -> dict[str, Any]:
    """Model, Android version, SoC, and each CPU's governor and frequencies as seen now."""
    desc: dict[str, Any] = {k: dev.getprop(p) for k, p in PROPS.items()}
    desc["serial"] = dev.serial
    desc["cpus"] = _cpus(dev.shell(CPU_QUERY, check=False))
    govs = {c["governor"] for c in desc["cpus"].values()}
    if govs - {"performance", "-"}:
        log.warning("CPU governors on %s: %s; timings follow frequency scaling (rooted phones can pin "
                    "'performance' in /sys/devices/system/cpu/cpu*/cpufreq/scaling_governor)", dev.serial,
                    ", ".join(sorted(govs)))
    return desc


def slug(model: str) -> str:
    """A file-name-safe device name from ``ro.product.model`` ("Pixel XL" -> "pixel-xl")."""
    s = re.sub(r"[^a-z0-9]+", "-", model.lower()).strip("-")
    if not s:
        raise NseError(f"phone model {model!r} gives no usable device name; pass --out")
    return s
