"""The lineage benchmark: a zoo of models with known ancestry and a runner that scores every
check and the verdict on every labelled pair (see README.md)."""
