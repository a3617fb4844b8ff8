"""What the CPU this process runs on offers for int8 arithmetic (Linux: /proc/cpuinfo flags).

Runtimes whose int8 kernels we compare with change arithmetic with it: on x86 without VNNI, ONNX
Runtime and OpenVINO multiply u8 x s8 with vpmaddubsw, whose int16 sums of two products saturate
(the "saturation issue" both projects document), so their results depend on the machine.
"""

import platform
from functools import lru_cache

VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def is_x86() -> bool:
    return platform.machine().lower() in ("x86_64", "amd64", "i686", "i386")


def x86_without_vnni() -> bool:
    """True on an x86 CPU whose int8 dot products saturate in int16 (no VNNI): AVX2 / AVX-512 only."""
    return is_x86() and not any(flag in cpu_flags() for flag in VNNI_FLAGS)


def has_flags(flags) -> bool:
    """Does this CPU report every one of `flags` (/proc/cpuinfo names, e.g. "avx2")?"""
    return all(flag in cpu_flags() for flag in flags)
