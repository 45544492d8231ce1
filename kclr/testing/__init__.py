"""Public test helpers for kclr and for plugin authors.

- `check_augmentation_layer`: the contract every augmentation layer keeps (shape, range,
  `training=False`, seeds, `tf.data`).
- `check_layer`, `check_recipe`, `check_loss`, `check_head`: every constructor argument
  survives `get_config` -> `from_config`, `kclr.spec.to_spec` -> build and a `.keras`
  file (`kclr.testing.components`); a failure names the argument that is lost.
- `kclr.testing.plugins.write_distribution`: a throwaway plugin distribution with entry points.
- `kclr.testing.hub_server`: a local server that serves a folder the way the Hugging Face Hub does.
- `kclr.testing.processes`: real `kclr fit` processes, one or N workers on loopback (`TF_CONFIG`).
"""

from kclr.testing.augmentation import check_augmentation_layer
from kclr.testing.components import (
    ComponentCheckError,
    check_head,
    check_layer,
    check_loss,
    check_recipe,
)

__all__ = [
    "ComponentCheckError",
    "check_augmentation_layer",
    "check_head",
    "check_layer",
    "check_loss",
    "check_recipe",
]
