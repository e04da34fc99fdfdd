"""Arrays across a process boundary without pickling: the raw bytes go into a shared-memory
block, a small JSON message (names, dtypes, shapes, offsets) goes down a pipe.

The JSON message stays far below the pipe's atomic-write size, so the reader never blocks half
way through it; copying the arrays out of shared memory is a memcpy (~10 us per 100 kB).
"""

from __future__ import annotations

from multiprocessing import shared_memory

import numpy as np

from dualctl.errors import DualctlError

#: Arrays start on 64-byte boundaries (cache lines), so the reader's copies are aligned.
_ALIGN = 64


class WireError(DualctlError):
    """A message does not fit the shared-memory block or does not describe valid arrays."""


def write_arrays(block: memoryview, arrays: dict[str, np.ndarray]) -> list[dict]:
    """Copy ``arrays`` into ``block``; return the layout a reader needs to get them back."""
    layout, offset = [], 0
    for name, value in arrays.items():
        array = np.asarray(value, order="C")  # (ascontiguousarray would make 0-d arrays 1-d)
        if array.dtype.hasobject:
            raise WireError(f"array {name!r} has dtype object; only plain arrays can be sent")
        if offset + array.nbytes > len(block):
            raise WireError(
                f"array {name!r} ({array.nbytes} B at offset {offset}) does not fit the "
                f"{len(block)} B shared-memory block; raise runtime.planner_shm_mb"
            )
        block[offset : offset + array.nbytes] = array.reshape(-1).view(np.uint8).data
        layout.append(
            {"name": name, "dtype": array.dtype.str, "shape": list(array.shape), "offset": offset}
        )
        offset += -(-array.nbytes // _ALIGN) * _ALIGN
    return layout


def read_arrays(block: memoryview, layout: list[dict]) -> dict[str, np.ndarray]:
    """Copies of the arrays ``layout`` describes in ``block`` (the block may be reused)."""
    arrays = {}
    try:
        for item in layout:
            dtype, shape = np.dtype(item["dtype"]), tuple(int(n) for n in item["shape"])
            count = int(np.prod(shape, dtype=np.int64))
            offset = int(item["offset"])
            if dtype.hasobject or offset < 0 or offset + count * dtype.itemsize > len(block):
                raise WireError(f"array {item['name']!r} lies outside the shared-memory block")
            flat = np.frombuffer(block, dtype=dtype, count=count, offset=offset)
            arrays[str(item["name"])] = flat.reshape(shape).copy()
    except (KeyError, TypeError, ValueError) as error:
        raise WireError(f"malformed array layout: {error}") from error
    return arrays


class SharedBlock:
    """A named shared-memory block, created by the parent and attached by the child.

    The parent owns it (``create=True``) and unlinks it on :meth:`close`; a child only closes
    its mapping.
    """

    def __init__(self, size_bytes: int = 0, name: str | None = None):
        self.owner = name is None
        self._shm = shared_memory.SharedMemory(name=name, create=self.owner, size=size_bytes)

    @property
    def name(self) -> str:
        return self._shm.name

    @property
    def view(self) -> memoryview:
        return self._shm.buf

    def close(self) -> None:
        if self._shm is None:
            return
        shm, self._shm = self._shm, None
        shm.close()
        if self.owner:
            shm.unlink()
