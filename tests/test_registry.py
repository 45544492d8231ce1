"""The registry: built-ins, entry-point plugins, broken and wrong-kind plugins, clashes, the switch."""

from __future__ import annotations

import sys
import warnings

import keras
import numpy as np
import pytest

from kclr import registry, spec
from kclr.registry import PluginWarning, RegistryClashError, RegistryError
from kclr.testing.plugins import write_distribution

LAYER_MODULE = """
import keras

class Brighten(keras.layers.Layer):
    '''Adds a constant to every pixel.'''

    def __init__(self, amount=0.1, **kwargs):
        super().__init__(**kwargs)
        self.amount = amount

    def call(self, images, training=True):
        return images + self.amount

    def get_config(self):
        return {**super().get_config(), "amount": self.amount}
"""


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A fresh site directory on sys.path; registries forget plugins before and after."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv(registry.DISABLE_ENV, raising=False)
    for reg in registry.REGISTRIES.values():
        reg.reset()
    yield tmp_path
    for module in [m for m in sys.modules if m.startswith("fakeplugin")]:
        del sys.modules[module]
    for reg in registry.REGISTRIES.values():
        reg.reset()


def test_plugin_is_discovered_with_origin_and_description(site):
    write_distribution(
        site,
        "fake-brighten",
        {"kclr.augmentations": {"brighten": "fakeplugin_brighten:Brighten"}},
        {"fakeplugin_brighten.py": LAYER_MODULE},
    )
    entry = registry.augmentations.entry("brighten")
    assert (entry.origin, entry.version, entry.kind) == ("fake-brighten", "0.3.1", "augmentation")
    assert entry.description == "Adds a constant to every pixel."
    layer = registry.augmentations.get("brighten", amount=0.5)
    np.testing.assert_allclose(np.asarray(layer(np.zeros((1, 2, 2, 3)))), 0.5)
    # by instance, and by config dict
    assert registry.augmentations.get(layer) is layer
    from_dict = registry.augmentations.get({"name": "brighten", "config": {"amount": 0.25}})
    assert from_dict.amount == 0.25


def test_registered_plugin_class_reloads_without_custom_objects(site, tmp_path):
    write_distribution(
        site,
        "fake-brighten",
        {"kclr.augmentations": {"brighten": "fakeplugin_brighten2:Brighten"}},
        {"fakeplugin_brighten2.py": LAYER_MODULE},
    )
    layer = registry.augmentations.get("brighten", amount=0.2)
    model = keras.Sequential([keras.Input((2, 2, 3)), layer])
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)
    assert type(reloaded.layers[0]).__name__ == "Brighten"
    np.testing.assert_allclose(np.asarray(reloaded(np.zeros((1, 2, 2, 3)))), 0.2, atol=1e-7)


def test_broken_plugin_warns_and_the_rest_keeps_working(site):
    write_distribution(
        site,
        "fake-broken",
        {"kclr.augmentations": {"broken": "fakeplugin_broken:Layer"}},
        {"fakeplugin_broken.py": "raise RuntimeError('boom at import')\n"},
    )
    write_distribution(
        site,
        "fake-good",
        {"kclr.augmentations": {"brighten": "fakeplugin_good:Brighten"}},
        {"fakeplugin_good.py": LAYER_MODULE},
    )
    with pytest.warns(PluginWarning) as caught:
        names = registry.augmentations.names()
    messages = [str(w.message) for w in caught]
    assert any("'fake-broken'" in m and "RuntimeError: boom at import" in m for m in messages)
    assert "brighten" in names and "broken" not in names


def test_wrong_kind_plugin_is_refused_with_a_clear_message(site):
    write_distribution(
        site,
        "fake-notaloss",
        {"kclr.losses": {"notaloss": "fakeplugin_notaloss:notaloss"}},
        {"fakeplugin_notaloss.py": "def notaloss(y_true, y_pred):\n    return 0.0\n"},
    )
    with pytest.warns(PluginWarning, match=r"Refused loss 'notaloss' from 'fake-notaloss'"):
        names = registry.losses.names()
    assert "notaloss" not in names
    with pytest.raises(RegistryError, match=r"expected a subclass of `keras.losses.Loss`"):
        registry.losses.add("direct", lambda y_true, y_pred: 0.0, origin="me")


def test_name_clash_between_two_distributions_is_an_error(site):
    for dist in ("fake-one", "fake-two"):
        module = f"fakeplugin_{dist[5:]}"
        write_distribution(
            site,
            dist,
            {"kclr.augmentations": {"brighten": f"{module}:Brighten"}},
            {f"{module}.py": LAYER_MODULE},
        )
    with pytest.raises(RegistryClashError, match=r"Two augmentation entries are named 'brighten'"):
        registry.augmentations.names()


def test_explicit_override_wins_the_clash(site):
    write_distribution(
        site,
        "fake-base",
        {"kclr.augmentations": {"brighten": "fakeplugin_base:Brighten"}},
        {"fakeplugin_base.py": LAYER_MODULE},
    )
    registry.augmentations.names()  # discover the plugin first
    replacement = type("Brighten", (keras.layers.Layer,), {"__module__": "elsewhere"})
    with pytest.raises(RegistryClashError, match="override explicitly"):
        registry.augmentations.add("brighten", replacement, origin="someone-else")
    entry = registry.augmentations.add(
        "brighten", replacement, origin="someone-else", override=True
    )
    assert registry.augmentations.entry("brighten") is entry
    flagged = type("Brighten", (keras.layers.Layer,), {"kclr_override": True, "__module__": "x"})
    assert registry.augmentations.add("brighten", flagged, origin="third").obj is flagged


def test_disable_switch_turns_discovery_off(site, monkeypatch):
    write_distribution(
        site,
        "fake-brighten",
        {"kclr.augmentations": {"brighten": "fakeplugin_off:Brighten"}},
        {"fakeplugin_off.py": LAYER_MODULE},
    )
    monkeypatch.setenv(registry.DISABLE_ENV, "1")
    assert "brighten" not in registry.augmentations.names()
    monkeypatch.delenv(registry.DISABLE_ENV)
    registry.augmentations.reset()
    assert "brighten" in registry.augmentations.names()


def test_unknown_name_suggests_the_closest(site):
    write_distribution(
        site,
        "fake-brighten",
        {"kclr.augmentations": {"brighten": "fakeplugin_typo:Brighten"}},
        {"fakeplugin_typo.py": LAYER_MODULE},
    )
    with pytest.raises(
        RegistryError, match=r"Unknown augmentation 'brigthen'. Did you mean 'brighten'"
    ):
        registry.augmentations.get("brigthen")
    with pytest.raises(spec.SpecError, match=r"needs a 'name' key"):
        registry.augmentations.get({"config": {}})


def test_builtins_come_from_kclr_and_are_serializable():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PluginWarning)
        entries = [e for r in registry.REGISTRIES.values() for e in r.entries() if e.is_builtin]
    for entry in entries:
        assert entry.origin == "kclr"
        assert entry.description, f"{entry.kind} {entry.name!r} has no description"
        if isinstance(entry.obj, type) and entry.obj.__module__.startswith("kclr"):
            assert keras.saving.get_registered_name(entry.obj) == f"kclr>{entry.obj.__name__}"
    kinds = {e.kind for e in entries}
    assert kinds == {"augmentation", "recipe", "encoder", "head", "loss", "optimizer",
                     "schedule", "protocol", "method"}  # fmt: skip
    names = {(e.kind, e.name) for e in entries}
    assert {
        ("optimizer", "sgd"),
        ("optimizer", "adamw"),
        ("schedule", "warmup_cosine"),
        ("head", "projection_head"),
        ("recipe", "simclr"),
        ("protocol", "linear"),
        ("method", "simclr"),
    } <= names


OPTIMIZER_MODULE = '''
import keras

class Fancy(keras.optimizers.SGD):
    """SGD with an extra knob, to test that plugins get their whole config."""

    def __init__(self, learning_rate=0.01, beta=0.1, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta = beta
        self.received = dict(kwargs, beta=beta, learning_rate=learning_rate)
'''


def test_plugin_optimizer_receives_every_configured_argument(site):
    """A third-party optimizer installed through an entry point, configured in a run config."""
    from kclr.run import config
    from kclr.run import fit as runs

    write_distribution(
        site, "fake-fancy", {"kclr.optimizers": {"fancy": "fakeplugin_fancy:Fancy"}},
        {"fakeplugin_fancy.py": OPTIMIZER_MODULE},
    )  # fmt: skip
    entry = registry.optimizers.entry("fancy")
    assert (entry.origin, entry.kind) == ("fake-fancy", "optimizer")
    cfg = config.resolve("tiny", overrides=[
        "optimizer={name: fancy, config: {beta: 0.5, momentum: 0.8, nesterov: true, "
        "weight_decay: 0.001, clipnorm: 2.0}}",
    ])  # fmt: skip
    optimizer = runs.build_optimizer(cfg, runs.plan(cfg, num_examples=64))
    assert type(optimizer).__name__ == "Fancy"
    received = dict(optimizer.received)
    schedule = received.pop("learning_rate")
    assert received == {
        "beta": 0.5, "momentum": 0.8, "nesterov": True, "weight_decay": 0.001, "clipnorm": 2.0,
    }  # fmt: skip
    assert type(schedule).__name__ == "WarmupCosineDecay"  # from the `schedule` spec
    assert (optimizer.momentum, optimizer.nesterov, optimizer.weight_decay) == (0.8, True, 0.001)
    with pytest.raises(ValueError, match="Did you mean 'optimizer.config.beta'"):
        config.resolve("tiny", overrides=["optimizer={name: fancy, config: {bta: 1}}"])


def test_trainer_compile_accepts_the_same_specs():
    from kclr.models import ProjectionHead, ResNet
    from kclr.trainer import ContrastiveTrainer

    trainer = ContrastiveTrainer(ResNet(18, 0.125, sync_bn=False), ProjectionHead("v1", 8))
    trainer.compile(
        optimizer={"name": "lars", "config": {
            "momentum": 0.8, "weight_decay": 1e-4,
            "learning_rate": {"name": "warmup_cosine", "config": {
                "base_learning_rate": 0.3, "global_batch_size": 512, "num_examples": 1024,
                "epochs": 2}},
        }},
        loss={"name": "supcon", "config": {"temperature": 0.2}},
    )  # fmt: skip
    assert type(trainer.optimizer).__name__ == "LARS" and trainer.optimizer.momentum == 0.8
    assert trainer.optimizer._learning_rate.peak_learning_rate == 0.6
    assert trainer.contrastive_loss.temperature == 0.2
    trainer.compile(optimizer="sgd", loss="ntxent")
    assert type(trainer.optimizer).__name__ == "SGD"
    with pytest.raises(ValueError, match="Did you mean 'lars'"):
        trainer.compile(optimizer={"name": "lasr", "config": {}})
