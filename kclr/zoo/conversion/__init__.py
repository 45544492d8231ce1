"""Conversion of the authors' checkpoints (`converter`, `mapping`, `official`) and their
comparison with the authors' SavedModel (`compare`, `verify`)."""
