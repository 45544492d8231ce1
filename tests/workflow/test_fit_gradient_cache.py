"""`kclr fit` with gradient caching and a SupCon memory queue: runs, checkpoints, resumes."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from kclr.cli import main
from kclr.run import config
from kclr.run import fit as runs

OVERRIDES = [
    "train.gradient_cache_chunk_size=2",  # 4 chunks of the tiny preset's batch of 8
    "loss.name=supcon",
    "loss.config.queue_size=24",  # 16 entries per step (8 images x 2 views): full after 2 steps
    "train.steps=3",
    "eval.monitor=false",
    "train.export=false",
]


class _Interrupt(Exception):
    pass


def _interrupt_after(step):
    import keras

    class Interrupt(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if int(self.model.optimizer.iterations.numpy()) == step:
                raise _Interrupt()

    return Interrupt()


@pytest.mark.slow  # three tiny runs with a traced chunk loop: minutes on 2 shared cores
def test_cli_fit_with_gradient_cache_and_queue_resumes_exactly(tmp_path):
    full, cut = tmp_path / "full", tmp_path / "cut"
    args = ["fit", "--preset", "tiny", "--out", str(full), "--quiet"]
    for override in OVERRIDES:
        args += ["--set", override]
    done = CliRunner().invoke(main, args)
    assert done.exit_code == 0, done.output
    with np.load(full / "checkpoints" / "ckpt-000000003.npz") as data:
        expected = {key: data[key] for key in data.files}

    cfg = config.resolve("tiny", overrides=OVERRIDES)
    with pytest.raises(_Interrupt):
        runs.fit(cfg, out=cut, verbose=0, callbacks=[_interrupt_after(2)])
    resumed = runs.fit(cfg, out=cut, resume=True, verbose=0)
    trainer = resumed.trainer
    assert resumed.steps == 3 and trainer.gradient_cache_chunk_size == 2
    queue = trainer.memory_queue
    assert int(queue.filled.numpy()) == 24 and int(queue.position.numpy()) == 0
    with np.load(cut / "checkpoints" / "ckpt-000000003.npz") as data:
        got = {key: data[key] for key in data.files}
    assert sorted(got) == sorted(expected)
    assert any("queue" in key for key in got)  # the queue is checkpointed with the rest
    for key, value in expected.items():
        np.testing.assert_allclose(got[key], value, rtol=1e-4, atol=1e-5, err_msg=key)


def test_chunk_that_does_not_divide_the_batch_is_refused_before_the_run_starts(tmp_path):
    cfg = config.resolve("tiny", overrides=["train.gradient_cache_chunk_size=3"])
    with pytest.raises(ValueError, match="local batch of 8 images.*e.g. 2"):
        runs.fit(cfg, out=tmp_path / "run", verbose=0)
    assert not (tmp_path / "run").exists()
    with pytest.raises(config.ConfigError, match="gradient_cache_chunk_size"):
        config.resolve("tiny", overrides=["train.gradient_cache_chunk_size=0"])
    with pytest.raises(config.ConfigError, match="loss.config.queue_size.*'ntxent' accepts"):
        config.resolve("tiny", overrides=["loss.config.queue_size=8"])


@pytest.mark.parametrize(
    "preset", ["demo", "simclr_cifar10_r18", "simclr_r50", "supcon_cifar10_r50", "supcon_r50"]
)
def test_presets_accept_chunks_of_256(preset):
    from kclr.trainer.gradient_cache import num_chunks

    cfg = config.resolve(preset, overrides=["train.gradient_cache_chunk_size=256"])
    assert num_chunks(cfg.data.global_batch_size, 256) == cfg.data.global_batch_size // 256
