"""What the engine loads: a model reference and where it is relative to."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Target:
    """A model to load: the reference as the user wrote it and the directory it is relative to."""

    reference: str
    base_dir: Path | None = None
    name: str | None = None

    def key(self) -> str:
        """Identity within a session: the absolute path, or the hub reference."""
        if self.reference.startswith("hf:"):
            return self.reference
        path = Path(self.reference).expanduser()
        if not path.is_absolute() and self.base_dir is not None:
            path = self.base_dir / path
        return str(path.resolve())

    @property
    def display(self) -> str:
        return self.name or self.reference
