"""Which CPU a host latency table was measured on, and whether this machine has the same one.

Host tables are per CPU: an AMD EPYC table mispredicts an Intel Xeon with AVX-512/AMX by tens of percent
(DESIGN.md, "Host tables are per CPU"), because the runtimes' kernels dispatch on the instruction sets a CPU has.
A *fingerprint* records what decides that: vendor, model name, family/model numbers, the ISA features the
runtimes dispatch on (AVX2, AVX-512, VNNI, BF16/FP16, AMX), plus core count and frequency governor for the
record. Two fingerprints are the same CPU when vendor, model name, family, model and ISA set agree; cores,
stepping, governor and frequency never decide it (a VM of the same CPU with more cores is the same CPU).

Parsing is pure (``parse_cpuinfo`` takes /proc/cpuinfo text, ``parse_lscpu`` lscpu's ``Key: value`` output) so
it is testable on fixture strings; ``this_cpu`` reads this machine.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from contextlib import suppress
from pathlib import Path
from typing import Any

# /proc/cpuinfo flag names of the features XNNPACK, ruy and ONNX Runtime's MLAS choose kernels by.
ISA_FLAGS = ("sse4_1", "sse4_2", "avx", "fma", "f16c", "avx2", "avx512f", "avx512dq", "avx512bw", "avx512vl",
             "avx512_vnni", "avx_vnni", "avx512_bf16", "avx512_fp16", "avx_vnni_int8", "amx_tile", "amx_int8",
             "amx_bf16", "amx_fp16", "asimd", "asimddp", "i8mm", "sve", "sve2", "bf16")
IDENTITY = ("vendor", "model_name", "family", "model", "isa")  # what "same CPU" compares
FINGERPRINT_FORMAT = "nse-hw/cpu/1"
_FLAG_ALIASES = {"avx512vnni": "avx512_vnni", "avxvnni": "avx_vnni", "avx512bf16": "avx512_bf16",
                 "avx512fp16": "avx512_fp16", "amx-tile": "amx_tile", "amx-int8": "amx_int8",
                 "amx-bf16": "amx_bf16"}
# (vendor, family) -> [(first model, last model, name)]: a label for messages only, never part of identity.
_UARCH = {
    ("AuthenticAMD", 23): [(0x01, 0x2f, "Zen/Zen+"), (0x30, 0xff, "Zen 2")],
    ("AuthenticAMD", 25): [(0x00, 0x0f, "Zen 3"), (0x10, 0x1f, "Zen 4"), (0x20, 0x5f, "Zen 3"),
                           (0x60, 0xaf, "Zen 4")],
    ("AuthenticAMD", 26): [(0x00, 0xff, "Zen 5")],
    ("GenuineIntel", 6): [(0x55, 0x55, "Skylake-SP/Cascade Lake"), (0x6a, 0x6c, "Ice Lake-SP"),
                          (0x8f, 0x8f, "Sapphire Rapids"), (0xcf, 0xcf, "Emerald Rapids"),
                          (0xad, 0xae, "Granite Rapids"), (0x97, 0x9a, "Alder Lake"), (0xb7, 0xbf, "Raptor Lake")],
}


def _flags(words: list[str]) -> list[str]:
    have = {_FLAG_ALIASES.get(w.lower(), w.lower()) for w in words}
    return [f for f in ISA_FLAGS if f in have]


def _int(v: str | None) -> int | None:
    s = str(v).strip()
    with suppress(ValueError):
        return int(s, 16) if s.lower().startswith("0x") else int(s)
    return None


def _fingerprint(vendor: str | None, model_name: str | None, family: int | None, model: int | None,
                 stepping: int | None, flags: list[str], cores: int | None, governor: str | None,
                 hypervisor: bool | None, source: str) -> dict[str, Any]:
    return {"format": FINGERPRINT_FORMAT, "vendor": vendor or "unknown", "model_name": model_name or "unknown",
            "family": family, "model": model, "stepping": stepping, "isa": _flags(flags),
            "logical_cores": cores, "governor": governor, "hypervisor": hypervisor, "source": source}


def parse_cpuinfo(text: str, *, governor: str | None = None) -> dict[str, Any]:
    """A fingerprint from /proc/cpuinfo text (the first processor's fields; cores = processor entries)."""
    blocks = [b for b in text.split("\n\n") if b.strip()]
    first: dict[str, str] = {}
    for line in (blocks[0] if blocks else "").splitlines():
        key, sep, value = line.partition(":")
        if sep:
            first.setdefault(key.strip().lower(), value.strip())
    cores = sum(1 for b in blocks if any(line.split(":")[0].strip() == "processor" for line in b.splitlines()))
    flags = (first.get("flags") or first.get("features") or "").split()  # x86 "flags", arm64 "Features"
    return _fingerprint(first.get("vendor_id") or first.get("cpu implementer"), first.get("model name"),
                        _int(first.get("cpu family")), _int(first.get("model")), _int(first.get("stepping")),
                        flags, cores or None, governor, "hypervisor" in flags if flags else None, "/proc/cpuinfo")


def parse_lscpu(text: str, *, governor: str | None = None) -> dict[str, Any]:
    """A fingerprint from ``lscpu`` output (``Key: value`` lines)."""
    d: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            d.setdefault(key.strip().lower(), value.strip())
    flags = d.get("flags", "").split()
    return _fingerprint(d.get("vendor id"), d.get("model name"), _int(d.get("cpu family")), _int(d.get("model")),
                        _int(d.get("stepping")), flags, _int(d.get("cpu(s)")), governor,
                        ("hypervisor vendor" in d) or ("hypervisor" in flags), "lscpu")


def read_governor(root: Path = Path("/sys/devices/system/cpu")) -> str | None:
    """cpu0's cpufreq scaling governor, or None where it is not readable (VMs often have no cpufreq)."""
    with suppress(OSError):
        return (root / "cpu0" / "cpufreq" / "scaling_governor").read_text().strip() or None
    return None


def this_cpu() -> dict[str, Any]:
    """This machine's fingerprint (from /proc/cpuinfo; elsewhere from ``platform``, with an empty ISA set)."""
    with suppress(OSError):
        return parse_cpuinfo(Path("/proc/cpuinfo").read_text(), governor=read_governor())
    return _fingerprint(None, platform.processor() or None, None, None, None, [], os.cpu_count(), None, None,
                        "platform")


def identity(fp: dict[str, Any]) -> dict[str, Any]:
    return {k: fp.get(k) for k in IDENTITY}


def cpu_id(fp: dict[str, Any]) -> str:
    """A short stable name of the CPU (for file names): ``cpu-`` and 8 hex digits of its identity."""
    blob = json.dumps(identity(fp), sort_keys=True).encode()
    return "cpu-" + hashlib.sha256(blob).hexdigest()[:8]


def same_cpu(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return identity(a) == identity(b)


def differences(table: dict[str, Any], here: dict[str, Any]) -> list[str]:
    """What differs between a table's CPU and this one, one phrase each (empty: the same CPU)."""
    out = [f"{k} {table.get(k)!r} vs {here.get(k)!r}" for k in IDENTITY if k != "isa" and table.get(k) != here.get(k)]
    ta, ha = set(table.get("isa") or []), set(here.get("isa") or [])
    if ta != ha:
        gained, lost = sorted(ha - ta), sorted(ta - ha)
        out.append("ISA" + (f" here only: {', '.join(gained)}" if gained else "")
                   + (";" if gained and lost else "") + (f" table only: {', '.join(lost)}" if lost else ""))
    return out


def uarch(fp: dict[str, Any]) -> str | None:
    for lo, hi, name in _UARCH.get((fp.get("vendor"), fp.get("family")), []):
        if fp.get("model") is not None and lo <= fp["model"] <= hi:
            return name
    return None


def isa_summary(fp: dict[str, Any]) -> str:
    """The dispatch-relevant features in words: ``AVX2, AVX-512, VNNI, BF16, AMX``."""
    isa = set(fp.get("isa") or [])
    parts = [("AVX2", "avx2" in isa), ("AVX-512", "avx512f" in isa),
             ("VNNI", bool({"avx512_vnni", "avx_vnni"} & isa)), ("BF16", "avx512_bf16" in isa),
             ("FP16", "avx512_fp16" in isa), ("AMX", "amx_tile" in isa), ("NEON dot", "asimddp" in isa)]
    return ", ".join(n for n, on in parts if on) or "no AVX2"


def describe(fp: dict[str, Any]) -> str:
    """One line: ``AMD EPYC (AuthenticAMD family 25 model 17, Zen 4; AVX2, AVX-512, VNNI, BF16)``."""
    arch = uarch(fp)
    where = f"{fp.get('vendor')} family {fp.get('family')} model {fp.get('model')}" + (f", {arch}" if arch else "")
    return f"{fp.get('model_name')} ({where}; {isa_summary(fp)})"


# --- a table's CPU against this one ----------------------------------------------------------------------------

SAME, OTHER, UNKNOWN, NOT_HOST = "same", "other", "unknown", "not-host"


def table_cpu(meta: dict[str, Any]) -> dict[str, Any] | None:
    """The fingerprint a host table records (``meta.host.cpu_fingerprint``), or None (older tables)."""
    fp = (meta.get("host") or {}).get("cpu_fingerprint") if isinstance(meta.get("host"), dict) else None
    return fp if isinstance(fp, dict) else None


def build_hint(meta: dict[str, Any]) -> str:
    """The command that builds this CPU's table of the same runtime, precision, threads and kernels."""
    spaces = meta.get("spaces") if isinstance(meta.get("spaces"), list) else []
    opts = [f"--runtime {meta.get('runtime') or 'litert'}",
            f"--space {spaces[0] if len(spaces) == 1 else 'nse27-proxyless224'}"]
    if (p := meta.get("precision") or meta.get("dtype")) not in (None, "float32"):
        opts.append(f"--precision {p}")
    if meta.get("threads") not in (None, 1):
        opts.append(f"--threads {meta['threads']}")
    if meta.get("kernels") not in (None, "xnnpack"):
        opts.append(f"--kernels {meta['kernels']}")
    return f"nse-hw profile --device host {' '.join(opts)} --quick"


def _recorded_name(meta: dict[str, Any]) -> str | None:
    host = meta.get("host")
    return str(host["cpu"]) if isinstance(host, dict) and host.get("cpu") else None


def cpu_status(meta: dict[str, Any], here: dict[str, Any]) -> str:
    """``same``, ``other``, ``unknown`` or ``not-host`` (a phone's table).

    A table without a fingerprint (older tables) is ``other`` when the CPU model name it records is not this
    one's, else ``unknown``: the same name can hide another ISA set (a VM's CPU model is often just "AMD EPYC").
    """
    if meta.get("device") != "host":
        return NOT_HOST
    fp = table_cpu(meta)
    if fp is None:
        said = _recorded_name(meta)
        return OTHER if said is not None and said != here.get("model_name") else UNKNOWN
    return SAME if same_cpu(fp, here) else OTHER


def cpu_warning(meta: dict[str, Any], here: dict[str, Any], name: str) -> str | None:
    """One line saying a host table is not (or is not known to be) this CPU's, and how to build this one's;
    None when it is this CPU's or not a host table."""
    status = cpu_status(meta, here)
    if status in (SAME, NOT_HOST) or not isinstance(meta.get("host"), dict):
        return None  # no host record at all: not a table `profile` measured (hand-made, a test's), nothing to say
    hint = f"build this CPU's in minutes with: {build_hint(meta)}"
    fp, said = table_cpu(meta), _recorded_name(meta)
    if status == UNKNOWN:
        return (f"latency table {name} does not record which CPU it was measured on (only the name {said!r}); "
                f"this host is {describe(here)}, and host tables are per CPU; {hint}")
    what = (f"{describe(fp)} ({'; '.join(differences(fp, here))})" if fp is not None
            else f"{said!r} by its record (no fingerprint)")
    return (f"latency table {name} was measured on another CPU, {what}; this host is {describe(here)}; host "
            f"tables are per CPU; {hint}")
