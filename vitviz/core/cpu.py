"""What this CPU multiplies fast: bfloat16 (AMX or AVX512-BF16) and int8 (AMX, AVX512-VNNI, AVX-VNNI)."""

from __future__ import annotations

from functools import lru_cache

from . import compat

INT8_ISAS = (("amx_int8", "AMX"), ("avx512_vnni", "AVX512-VNNI"), ("avx_vnni", "AVX-VNNI"))


@lru_cache(maxsize=1)
def flags() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none), read once: the live
    camera asks whether int8 can run on every frame."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def fast_bf16() -> bool:
    """AMX or AVX512-BF16: there bfloat16 matmuls beat float32 (DESIGN.md, 'Precision and speed')."""
    return compat.amx_tile_supported() or compat.avx512_bf16_supported()


def int8_isa() -> str:
    """The instruction set that multiplies int8 fast here ("AMX", "AVX512-VNNI", "AVX-VNNI"), or ""."""
    found = set(flags())
    if compat.amx_tile_supported():
        found.add("amx_int8")
    for flag, name in INT8_ISAS:
        if flag in found:
            return name
    return ""
