"""Memory-aware weight packing: int16-packed weights while the firmware fits, int8 where it must.

The MAC kernels' default schedule stores weights pre-widened to int16 (weight_pack "i16": one
load feeds a vwmacc without a widening step), which doubles the weight bytes. On a chip whose
weights region is too small for that, the layers with the most weight bytes switch to int8
storage (weight_pack "i8", widened in the loop, with the estimate's best schedule for that
packing) until the estimate fits; the link then has the last word.

    choice = pack_for_fit(firmware, profile)   # {step index: {"weight_pack": "i8"}} or {}
"""

from compiler.errors import FitError
from compiler.names import shown

MAC_KERNELS = ("conv2d", "dense")
HEADROOM = 0.97  # of the weights region: alignment padding and the runtime's own constants


def weight_elements(layer) -> int:
    kernel = layer.step.kernel
    weight = kernel.arrays.get("weight") if kernel is not None else None
    return int(weight.size) if weight is not None else 0


def stored_weight_bytes(layer) -> int:
    """Bytes the layer's weights take as packed: int16 for "i16", int8 otherwise (and the kernels/ref
    and TVM layers, which keep them int8)."""
    packed_i16 = layer.impl in ("rvv", "c") and (layer.schedule or {}).get("weight_pack") == "i16"
    return weight_elements(layer) * (2 if packed_i16 else 1)


def _region_need(firmware, profile) -> tuple[int, list]:
    """Bytes the weights region must hold (constants, and the spilled activations when they share
    it) and the consumers, largest first: [(what, bytes)]."""
    consumers = [(f"layer {shown(layer.step.name, 60)}", layer.constant_bytes) for layer in firmware.layers]
    if profile.roles["spill"] == profile.roles["weights"]:
        from compiler.coral.firmware import SPILL_ARENA

        consumers.append(("activations spilled from DTCM", firmware.arena_bytes.get(SPILL_ARENA, 0)))
    return sum(size for _, size in consumers), sorted(consumers, key=lambda item: -item[1])


def pack_for_fit(firmware, profile, fixed: dict) -> dict:
    """Step index -> {"weight_pack": "i8"} for the fewest layers (most weight bytes first) that make
    the weights region's contents fit; layers in `fixed` (tuned schedules) are left alone."""
    region = profile.region_for("weights")
    budget = int(region.size * HEADROOM)
    need, _ = _region_need(firmware, profile)
    candidates = sorted((layer for layer in firmware.layers
                         if layer.step.index not in fixed and stored_weight_bytes(layer) > weight_elements(layer)),
                        key=lambda layer: -weight_elements(layer))
    choice = {}
    for layer in candidates:
        if need <= budget:
            break
        choice[layer.step.index] = {"weight_pack": "i8"}
        need -= weight_elements(layer)
    return choice


def all_int8(firmware, fixed: dict) -> dict:
    return {layer.step.index: {"weight_pack": "i8"} for layer in firmware.layers
            if layer.step.index not in fixed and stored_weight_bytes(layer) > weight_elements(layer)}


def check_constants_fit(firmware, profile, alternatives: dict) -> None:
    """FitError naming the region, the bytes and the largest consumers when even int8 weights do
    not fit: before any C is compiled."""
    region = profile.region_for("weights")
    need, consumers = _region_need(firmware, profile)
    if need <= region.size:
        return
    listed = ", ".join(f"{what} {size:,}" for what, size in consumers[:3] if size)
    raise FitError(f"the model does not fit memory profile {profile.name}: {region.name} needs {need:,} bytes "
                   f"(weights packed as int8), {region.size:,} available; largest: {listed}"
                   + _bigger_hint(profile, need, alternatives))


def _bigger_hint(profile, need: int, alternatives: dict) -> str:
    """The first other profile whose weights region holds `need` bytes, else a larger --extmem."""
    for name, other in alternatives.items():
        if name != profile.name.split(",")[0] and other.region_for("weights").size >= need:
            return f"; try --memory {name}"
    return "; try a larger --extmem"
