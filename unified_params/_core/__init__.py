"""Framework-free core: the rules every backend shares.

Nothing here imports torch, tensorflow, keras or paddle; adapters in
``unified_params.backends`` translate between these rules and one framework.
"""
