"""Forward passes for activation-based checks (the optional ``activations`` extra: torch).

``probe`` holds the shipped probe text and spells it with tokens two vocabularies share;
``forward`` runs a decoder layer by layer from modelprint's canonical role tensors and hands
out each MLP's gate and up activations. Nothing here imports torch at import time.
"""
