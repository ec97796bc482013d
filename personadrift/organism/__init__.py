"""The persona-world model organism: corpus generator, tokenizer, pretraining, judges, cache."""
