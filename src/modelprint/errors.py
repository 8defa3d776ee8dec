"""One exception tree for everything a user can get wrong or a file can hide.

Every user-facing failure is a subclass of :class:`ModelprintError`; the CLI prints
``str(error)`` as one line and exits 2 for :class:`InputError`, the pytest plugin turns an
:class:`InputError` raised during collection into a collection error (pytest exit 2).

::

    ModelprintError
    ├── InputError                  bad input: the message names the file and the cause
    │   ├── ModelReferenceError     a MODEL reference that cannot be resolved
    │   ├── PickleRefusedError      .bin/.pt/.pth: never unpickled
    │   ├── ModelFileError          truncated, hostile or inconsistent weight file
    │   │   └── NonFiniteWeightsError   NaN/Inf in a tensor, or a gain beyond float32
    │   ├── UnsupportedArchitectureError  family not known (lists the supported ones)
    │   ├── FingerprintFormatError  a *.fp.json that is not a fingerprint we can read
    │   ├── HubError                hf: reference not resolvable (offline, not cached)
    │   └── AuditSpecError          *.audit.yaml problem, with file:line
    └── CheckError                  a check could not be computed on valid input (a bug)
"""

from __future__ import annotations

from pathlib import Path


class ModelprintError(Exception):
    """Base of every error modelprint raises on purpose."""


class InputError(ModelprintError):
    """Bad input. ``str()`` is one line: ``<where>: <cause>``."""

    def __init__(self, where: str | Path | None, cause: str) -> None:
        self.where = str(where) if where is not None else None
        self.cause = " ".join(str(cause).split())  # always one line
        super().__init__(f"{self.where}: {self.cause}" if self.where else self.cause)


class ModelReferenceError(InputError):
    """A MODEL reference that names nothing usable."""


class PickleRefusedError(InputError):
    """Pickled checkpoints can execute code when loaded; modelprint never opens them."""


class ModelFileError(InputError):
    """A weight file that is truncated, hostile or internally inconsistent."""


class NonFiniteWeightsError(ModelFileError):
    """NaN or Inf values, or a norm gain or bias so large (beyond float32) that it is Inf
    wherever it is applied: statistics and comparisons over them would be meaningless."""


class UnsupportedArchitectureError(InputError):
    """A model family modelprint has no tensor-name map for."""


class FingerprintFormatError(InputError):
    """A fingerprint file of an unknown format or version, or malformed."""


class HubError(InputError):
    """An ``hf:`` reference that cannot be resolved (offline and not in the cache, ...)."""


class AuditSpecError(InputError):
    """An audit YAML problem; ``where`` is ``file:line``."""


class CheckError(ModelprintError):
    """A check failed on input that passed validation: a bug to report."""
