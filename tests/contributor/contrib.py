"""Helpers of the contributor tests: the files a document shows, written outside the repository; the runner in-process."""

from __future__ import annotations

import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # `benchmarks` and `baselines` are top-level packages
    sys.path.insert(0, str(REPO))

#: synthetic corpus sizes for the runner's tasks: small enough for seconds, big enough that every split exists
SMALL_SYNTH = {"synth-mimic": 96, "synth-ptbxl": 160, "synth-cpsc2018": 120}


def write_doc_files(doc: Path, dest: Path) -> list[str]:
    """Write the ``<!-- file: NAME -->`` code blocks of ``doc`` under ``dest``; return their names."""
    blocks = re.findall(r"<!-- file: (\S+) -->\n```\w*\n(.*?)```", doc.read_text(), flags=re.S)
    for name, body in blocks:
        p = dest / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(body)
    return [name for name, _ in blocks]


def contributed_files(root: Path) -> list[str]:
    """Every file a contributor wrote under ``root`` (Python's bytecode caches are not theirs)."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def compose_run(argv: list[str]):
    """``benchmarks/run.py ARGV`` in-process: ``method_dir=`` expanded as the CLI does, the config composed the same way."""
    from hydra import compose, initialize_config_dir

    from benchmarks.run import expand_method_dir

    full = expand_method_dir(argv)
    search = [a for a in full if a.startswith("hydra.searchpath=")]
    assert search, "the contribution is found through method_dir="
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        return compose("config", overrides=full)
