"""One worker of the MultiWorkerMirroredStrategy test (run as a subprocess).

Usage: python kclr_multiworker_worker.py TASK_INDEX PORT0,PORT1 WORK_DIR FLOATX
Reads WORK_DIR/inputs.npz (initial weights, images, labels), runs one training
step on its half of the global batch and writes WORK_DIR/worker_TASK.npz.
"""

from __future__ import annotations

import json
import os
import pathlib
import sys

task_index = int(sys.argv[1])
ports = sys.argv[2].split(",")
work_dir = pathlib.Path(sys.argv[3])
floatx = sys.argv[4]
os.environ["TF_CONFIG"] = json.dumps(
    {
        "cluster": {"worker": [f"127.0.0.1:{port}" for port in ports]},
        "task": {"type": "worker", "index": task_index},
    }
)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["CUDA_VISIBLE_DEVICES"] = ""
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from kclr_tiny import compile_trainer, tiny_trainer, weights_by_path  # noqa: E402

import kclr  # noqa: E402

keras.config.set_floatx(floatx)
keras.config.set_dtype_policy(floatx)
strategy = kclr.distribute.get_strategy("multiworker")
inputs = np.load(work_dir / "inputs.npz")
images, labels = inputs["images"], inputs["labels"]
num_workers = len(ports)
per_worker = images.shape[0] // num_workers


def dataset_fn(context):
    # Worker i gets rows [i*b, (i+1)*b) of the global batch.
    start = context.input_pipeline_id * per_worker
    stop = start + per_worker
    return tf.data.Dataset.from_tensor_slices(
        {"views": images[start:stop], "labels": labels[start:stop]}
    ).batch(per_worker)


with strategy.scope():
    trainer = tiny_trainer()
    trainer(images[:1], training=False)
    trainer.set_weights([inputs[f"w{i}"] for i in range(len(trainer.weights))])
    compile_trainer(trainer, learning_rate=float(inputs["learning_rate"]))
data = strategy.distribute_datasets_from_function(dataset_fn)
history = trainer.fit(data, epochs=1, steps_per_epoch=1, verbose=0)
result = {f"weight:{path}": value for path, value in weights_by_path(trainer).items()}
result.update({f"log:{k}": np.asarray(v[-1]) for k, v in history.history.items()})
np.savez(work_dir / f"worker_{task_index}.npz", **result)
print(f"worker {task_index} done", flush=True)
