"""Forward passes for activation-based checks (numpy only).

``probe`` holds the shipped probe text and spells it with tokens two vocabularies share;
``forward`` runs a decoder layer by layer from modelprint's canonical role tensors and hands
out each MLP's gate and up activations.
"""
