"""A reference library of fingerprints, and screening a candidate against all of it.

* ``store``       -- content-addressed binary arrays and manifests (no pickle, no base64);
* ``index``       -- the SQLite (WAL) index: entries, reference counts, failures, migrations;
* ``core``        -- :class:`ModelLibrary`: add, remove, read, verify;
* ``descriptors`` -- the disguise-surviving screening descriptor, scored vectorised;
* ``identify``    -- prefilter, then the decisive checks on the best K, Bonferroni over all N;
* ``direction``   -- which of two related models is the parent, where evidence allows;
* ``build``       -- many models fingerprinted as Dask tasks, the client alone writing;
* ``archive``     -- one validated tar a CI job downloads (export / import).
"""

from __future__ import annotations

from modelprint.library.core import ModelLibrary, default_dir
from modelprint.library.store import LibraryError

__all__ = ["LibraryError", "ModelLibrary", "default_dir"]
