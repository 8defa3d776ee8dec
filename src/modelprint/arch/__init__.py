"""Architecture layer: model families, tensor names -> canonical roles, slot reading.

``resolve(source)`` gives the :class:`ArchInfo` and the :class:`RoleSlot` list of a model;
``iter_slot_blocks`` streams a slot's values for statistics; ``load_slot`` returns a slot as a
float32 array in the Hugging Face layout for checks that need the matrix.
"""

from __future__ import annotations

from .base import ArchInfo, RoleSlot
from .families import resolve, supported_families
from .reading import iter_slot_blocks, load_slot

__all__ = ["ArchInfo", "RoleSlot", "iter_slot_blocks", "load_slot", "resolve",
           "supported_families"]
