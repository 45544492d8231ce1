"""Conversion of the authors' checkpoints (`converter`, `mapping`, `official`) and their
comparison with the authors' SavedModel (`compare`).

Conversion reads local files only: `kclr.zoo.convert` and the resolver hand it a
downloader, and `kclr.zoo.verify` finds the model to compare; neither is imported here.
"""
