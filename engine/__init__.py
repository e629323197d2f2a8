"""The inference side of tinyllm: model, tokenizer, generation, checkpoints, model and feedback stores, daemon.

Imports nothing of ours outside this package, so the daemon and the shell path stay light.
"""
