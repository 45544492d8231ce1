"""The run layer: a run's configuration (`config`), where it comes from (`config_sources`).

`kclr.config` is the public face of both; `kclr.runs` trains from a resolved config and
`kclr.rundir` lays out the run directory.
"""
