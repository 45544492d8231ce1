"""Public test helpers for kclr and for plugin authors.

- `check_augmentation_layer`: asserts the contract every augmentation layer keeps.
- `kclr.testing.plugins.write_distribution`: a throwaway plugin distribution with entry points.
- `kclr.testing.hub_server`: a local server that serves a folder the way the Hugging Face Hub does.
- `kclr.testing.processes`: real `kclr fit` processes, one or N workers on loopback (`TF_CONFIG`).
"""

from kclr.testing.augmentation import check_augmentation_layer

__all__ = ["check_augmentation_layer"]
