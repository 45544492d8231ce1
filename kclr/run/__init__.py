"""The run layer: configuration, plan, fit and run directory of `kclr fit`.

- `kclr.run.config`: a run configuration: its schema and checks, and its sources (presets,
  YAML/JSON files, `--set` overrides) merged by `resolve`.
- `kclr.run.plan`: steps, epochs and options of a run, resolved from a config.
- `kclr.run.fit`: builds the components, trains once with callbacks, exports.
- `kclr.run.rundir`: the run directory's files.
"""
