"""Bad run options are refused before any work, in one line with the allowed values (benchmarks/pipeline/validate.py).

The table is the record of bad inputs tried (docs/reliability.md): each override, and the message it must give.
Most rows call ``validate_run`` on the composed config (milliseconds); a few go through ``benchmarks/run.py``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from benchmarks.pipeline.errors import ConfigError
from benchmarks.pipeline.validate import validate_run

#: (override, regex the one-line message must match); "{tmp}" is the test's temporary directory
BAD = [
    ("seed=abc", r"^seed='abc': expected an integer >= 0$"),
    ("seed=-1", r"^seed=-1: expected an integer >= 0$"),
    ("seed=1.5", r"^seed=1\.5: expected an integer >= 0$"),
    (
        "stages=[pretrain,zeroshot]",
        r"^stages=\['pretrain', 'zeroshot'\]: unknown stage\(s\) \['zeroshot'\]; valid: "
        r"\['pretrain', 'zero_shot', .*'publish'\]$",
    ),
    ("stages=pretrain", r"^stages='pretrain': expected a list"),
    ("eval.device=cuda", r"^eval\.device=cuda: this machine has no CUDA device; use eval\.device=auto or cpu$"),
    ("eval.device=cuda:3", r"^eval\.device=cuda:3: this machine has no CUDA device"),
    ("eval.device=tpu", r"^eval\.device='tpu': expected one of auto, cpu, cuda, cuda:<k>$"),
    ("eval.precision=fp16", r"^eval\.precision='fp16': expected one of 32, bf16$"),
    ("eval.fractions=[0.0]", r"^eval\.fractions\[0\]=0\.0: expected a fraction in \(0, 1\]"),
    ("eval.fractions=[0.1,1.5]", r"^eval\.fractions\[1\]=1\.5: expected a fraction in \(0, 1\]"),
    ("eval.fractions=[-0.1]", r"^eval\.fractions\[0\]=-0\.1: expected a fraction in \(0, 1\]"),
    ("eval.fractions=[ten]", r"^eval\.fractions\[0\]='ten': expected a fraction in \(0, 1\]"),
    ("eval.fractions=0.1", r"^eval\.fractions=0\.1: expected a list"),
    ("eval.fractions=[]", r"^eval\.fractions=\[\]: expected at least one value$"),
    ("eval.probe_seeds=[0,x]", r"^eval\.probe_seeds\[1\]='x': expected an integer >= 0$"),
    ("eval.bootstrap=-5", r"^eval\.bootstrap=-5: expected an integer >= 0$"),
    ("eval.batch_size=0", r"^eval\.batch_size=0: expected an integer >= 1$"),
    ("eval.finetune.fractions=[2]", r"^eval\.finetune\.fractions\[0\]=2: expected a fraction in \(0, 1\]"),
    ("eval.report_generation.beam_size=0", r"^eval\.report_generation\.beam_size=0: expected an integer >= 1$"),
    ("eval.prompts={tmp}/absent.json", r"^eval\.prompts=.*absent\.json: no such file"),
    ("dataset.tasks=[nope]", r"^dataset\.tasks: unknown task 'nope'; valid: .*ptbxl_super.*synth_ptbxl_super"),
    (
        "dataset.tasks=[ptbxl_super]",
        r"^dataset\.tasks: task 'ptbxl_super' is not in the 'synthetic' suite; valid there: "
        r".*synth_ptbxl_super",
    ),
    ("eval.zero_shot_seeds=[]", r"^eval\.zero_shot_seeds=\[\]: expected at least one value$"),
    ("results_name=a/b", r"^results_name='a/b': expected a name without '/'"),
    ("data_root={tmp}/absent", r"^data_root=.*absent: not a directory"),
    ("results_dir=/proc/ecgbench", r"^results_dir=/proc/ecgbench: /proc is not writable"),
    ("run_store={tmp}/a_file/runs", r"^run_store=.*a_file/runs: .*a_file is a file, not a directory$"),
    ("leaderboard_dir={tmp}/ro/board", r"^leaderboard_dir=.*ro/board: .*ro is not writable"),
    ("trainer.accelerator=tpu", r"^trainer\.accelerator='tpu': expected one of auto, cpu, gpu, cuda, mps$"),
    ("trainer.accelerator=gpu", r"^trainer\.accelerator=gpu: this machine has no CUDA device; use trainer=cpu"),
    ("trainer.precision=8-bit", r"^trainer\.precision='8-bit': expected one of .*bf16-mixed.*32-true"),
    ("trainer.max_steps=lots", r"^trainer\.max_steps='lots': expected an integer >= -1$"),
    ("trainer.devices=0", r"^trainer\.devices=0: expected an integer >= 1$"),
]


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)


@pytest.fixture
def tmp_layout(tmp_path: Path):
    (tmp_path / "a_file").write_text("x")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    yield tmp_path
    ro.chmod(0o700)


def _base(tmp: Path) -> list[str]:
    return [f"run_store={tmp / 'runs'}", f"output_dir={tmp / 'out'}"]


def test_the_table_has_at_least_twenty_distinct_bad_inputs() -> None:
    assert len({o for o, _ in BAD}) == len(BAD) >= 20


@pytest.mark.parametrize("override,pattern", BAD, ids=[o for o, _ in BAD])
def test_bad_option_refused_in_one_line(override, pattern, compose_cfg, tmp_layout, no_gpu) -> None:
    tmp = tmp_layout
    if "/proc/" in override and not Path("/proc").is_dir():
        pytest.skip("no /proc on this system")
    if "ro/board" in override:
        probe = tmp / "ro" / ".probe"
        try:  # root writes into a 0o500 directory: there is no read-only directory to test with
            probe.write_text("x")
            probe.unlink()
            pytest.skip("this user can write a read-only directory (root)")
        except OSError:
            pass
    cfg = compose_cfg([*_base(tmp), override.replace("{tmp}", str(tmp))])
    with pytest.raises(ConfigError) as err:
        validate_run(cfg)
    msg = str(err.value)
    assert "\n" not in msg
    assert re.search(pattern, msg), msg


def test_the_default_config_and_the_toy_config_pass(compose_cfg, tmp_path) -> None:
    validate_run(compose_cfg(_base(tmp_path)))
    toy = [*_base(tmp_path), "method=toy", "dataset=toy"]
    validate_run(compose_cfg([*toy, "backend._target_=ecgbench_toy.ToyBackend"]))  # its backend checks its tasks
    with pytest.raises(ConfigError, match="unknown task 'toy_a'"):  # the real backend does not know them
        validate_run(compose_cfg(toy))
    validate_run(compose_cfg([*_base(tmp_path), "dataset=real", "eval.fractions=[0.01,1]", "seed=3"]))


def test_unwritable_ecg_cache_is_refused(compose_cfg, tmp_layout, monkeypatch) -> None:
    monkeypatch.setenv("ECG_CACHE", str(tmp_layout / "a_file" / "cache"))
    with pytest.raises(ConfigError, match=r"^\$ECG_CACHE=.*a_file/cache: .*a_file is a file, not a directory$"):
        validate_run(compose_cfg(_base(tmp_layout)))


def test_through_run_py_exit_2_one_line_nothing_built(cli, tmp_path) -> None:
    """The real entry point: exit code 2, one ``error:`` line, no traceback, nothing written in the run store."""
    for override, pattern in [("seed=abc", BAD[0][1]), ("eval.fractions=[0.0]", BAD[9][1])]:
        out = cli([*_base(tmp_path), override], env={"ECG_CACHE": str(tmp_path / "cache")})
        assert out.returncode == 2, out.stderr[-2000:]
        assert "Traceback" not in out.stderr
        errors = [l for l in out.stderr.splitlines() if l.startswith("error: ")]
        assert len(errors) == 1 and re.search(pattern, errors[0][len("error: ") :]), out.stderr[-2000:]
    assert not (tmp_path / "cache").exists() and not list((tmp_path / "runs").rglob("*.json"))
