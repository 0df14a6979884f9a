"""The live camera's state on the server: one frame worked on at a time (the gate), each tab's frame
rate, and which model the frames run on.

Live frames run in int8 where vitviz.quant can serve it and its fidelity gate passed (a map that
follows the camera, not one to measure); the analyses of uploads keep the model's own dtype. Only for
models wide enough that the matrix products dominate (INT8_MIN_WIDTH; the measurements behind it:
results/measured.md, "int8 for the camera").
"""

from __future__ import annotations

import time

from .. import live, models, quant
from ..core.cache import Cache
from ..core.loaded import LoadedModel

INT8_MIN_WIDTH = 384
INT8_ASK_EVERY_S = 2.0


class Camera:
    def __init__(self, int8: bool = True):
        self.gate = live.Gate()
        self.rates: Cache[live.FrameRate] = Cache(max_entries=64)
        self.int8 = int8
        self._fast: Cache[tuple] = Cache(max_entries=16)   # (model, dtype, device) -> (last asked, int8 model or None)

    def rate(self, key: str) -> live.FrameRate:
        return self.rates.get(key, live.FrameRate)

    def wants_int8(self, loaded: LoadedModel) -> bool:
        return self.int8 and loaded.hidden_size >= INT8_MIN_WIDTH

    def model(self, loaded: LoadedModel) -> LoadedModel:
        """The model the camera runs for `loaded`: its int8 variant once vitviz.quant has prepared it and
        its fidelity gate passed (the first ask starts the preparation in the background; `loaded`
        serves meanwhile). Every frame comes through here: the one place that picks the camera's model."""
        if not self.wants_int8(loaded):
            return loaded
        key = (loaded.name, loaded.dtype, loaded.device)
        asked_at, fast = self._fast.lookup(key) or (float("-inf"), None)
        # quant.fast_model looks at the CPU and the installed packages each time (~3 ms): ask again
        # only every few seconds while the int8 model is not ready; once ready it stays ready
        if fast is None and time.monotonic() - asked_at > INT8_ASK_EVERY_S:
            fast = quant.fast_model(self._float32(loaded))
            self._fast.put(key, (time.monotonic(), fast))
        return fast or loaded

    @staticmethod
    def _float32(loaded: LoadedModel) -> LoadedModel:
        """The float32 model int8 is made from (a bfloat16 model's float32 twin, same weights)."""
        if loaded.dtype in ("float32", "int8") or quant.refusal(loaded.device) or not loaded.int8:
            return loaded
        return models.load(loaded.name, loaded.device, "float32")
