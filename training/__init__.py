"""The making side of tinyllm: data sources, tokenizer training, shards, trainer, evaluation."""
