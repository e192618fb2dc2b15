"""Performance benchmarks: each module is a script, run from the repository root as
``python -m benchmarks.perf.<name>`` (``--help`` lists its options); ``step_models`` is the shared helper
that builds the timed models from the configs. Commands and measured numbers: docs/performance.md.
"""
