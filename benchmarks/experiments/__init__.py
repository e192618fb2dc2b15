"""One-off studies and figures (not part of the runner, not performance benchmarks): each module is a script, run
from the repository root as ``python -m benchmarks.experiments.<name>``; its docstring says what it answers and
which doc reports the result.
"""
