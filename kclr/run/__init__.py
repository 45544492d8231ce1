"""The run layer: configuration, plan, fit and run directory of `kclr fit`.

- `kclr.run.config`: the schema of a run configuration (sections, checks, `merge`).
- `kclr.run.config_sources`: presets, YAML/JSON files and `--set` overrides (`resolve`).
- `kclr.run.plan`: steps, epochs and options of a run, resolved from a config.
- `kclr.run.fit`: builds the components, trains once with callbacks, exports.
- `kclr.run.rundir`: the run directory's files.

`kclr.config` is the public face of the configuration modules.
"""
