"""`runtime.onednn`: chosen before TensorFlow is imported, from the processor or the setting."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from kclr import runtime

AVX2 = {"sse4_2", "avx", "avx2", "fma"}


def test_auto_follows_the_processor_and_the_users_environment():
    assert runtime.choose_onednn("auto", AVX2 | {"avx512f"}, env={}) == (
        True, "runtime.onednn=auto: AVX-512 processor",
    )  # fmt: skip
    enabled, reason = runtime.choose_onednn("auto", AVX2, env={})
    assert not enabled and "no AVX-512" in reason
    assert runtime.choose_onednn("auto", set(), env={})[0] is True  # unknown: TF's default
    enabled, reason = runtime.choose_onednn("auto", AVX2, env={"TF_ENABLE_ONEDNN_OPTS": "1"})
    assert enabled and "set by the user" in reason
    assert runtime.choose_onednn("off", AVX2 | {"avx512f"}, env={"TF_ENABLE_ONEDNN_OPTS": "1"}) == (
        False, "runtime.onednn=off",
    )  # fmt: skip
    with pytest.raises(ValueError, match="runtime.onednn.*'fast'.*auto, on, off"):
        runtime.choose_onednn("fast")


def test_cpu_flags_reads_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f\n\nprocessor\t: 1\n")
    assert runtime.cpu_flags(info) == {"fpu", "sse", "avx2", "avx512f"}
    assert runtime.cpu_flags(tmp_path / "missing") == set()


def test_the_setting_of_the_merged_sources_without_importing_tensorflow(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("runtime: {onednn: on}\n")  # YAML reads `on` as true
    code = textwrap.dedent(f"""
        import sys
        from kclr.run.config import merge_sources, onednn_setting
        print(onednn_setting(merge_sources("demo")),
              onednn_setting(merge_sources("demo", [{str(config)!r}])),
              onednn_setting(merge_sources("demo", [{str(config)!r}], ["runtime.onednn=off"])),
              "tensorflow" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["auto", "on", "off", "False"], out.stderr


def test_config_reads_on_off_words_and_rejects_others():
    from kclr.run import config

    assert config.resolve("tiny", overrides=["runtime.onednn=off"]).runtime.onednn == "off"
    assert config.resolve("tiny").runtime.onednn == "auto"
    with pytest.raises(config.ConfigError, match="runtime.onednn.*Did you mean 'off'"):
        config.resolve("tiny", overrides=["runtime.onednn=of"])


@pytest.mark.parametrize("setting, expected", [("off", "0"), ("on", "1")])
def test_kclr_fit_sets_the_cpu_path_before_tensorflow_is_imported(tmp_path, setting, expected):
    """A real `kclr fit` process: TensorFlow sees the variable, the run log says the path."""
    code = textwrap.dedent("""
        import os, sys
        from kclr import runtime
        choose = runtime.apply_onednn
        def apply_onednn(setting):
            print("tensorflow imported at the choice:", "tensorflow" in sys.modules)
            return choose(setting)
        runtime.apply_onednn = apply_onednn
        import kclr.run.fit as runs
        real = runs.fit
        def fit(cfg, **kwargs):
            import tensorflow  # imported by the config's components: after the choice
            print("env at import", os.environ.get("TF_ENABLE_ONEDNN_OPTS"))
            return real(cfg, **kwargs)
        runs.fit = fit
        from kclr.cli import main
        sys.exit(main())
    """)
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    env.update(TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    args = ["fit", "--preset", "tiny", "-q", "--set", "train.steps=1", "--set",
            "eval.monitor=false", "--set", "train.export=false", "--set",
            f"runtime.onednn={setting}", "--out", str(tmp_path / "run")]  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                         timeout=300, env=env)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.splitlines()[0] == "tensorflow imported at the choice: False", out.stdout
    assert f"env at import {expected}" in out.stdout
    assert f"CPU path: oneDNN {setting} (runtime.onednn={setting})" in out.stdout


def test_a_late_setting_says_it_could_not_act(monkeypatch):
    import tensorflow  # noqa: F401  (imported: too late to change the path)

    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "1")
    monkeypatch.setattr(runtime, "_APPLIED", {})
    line = runtime.apply_onednn("off")
    assert line.startswith("CPU path: oneDNN on: runtime.onednn=off asks for off, but TensorFlow")
    assert os.environ["TF_ENABLE_ONEDNN_OPTS"] == "1"
