"""No code runs from a file the suite reads (docs/reliability.md).

A checkpoint whose pickle calls ``os.system("touch pwned")`` is refused -- ``pwned`` never appears -- with one
line naming the file and the offending type: passed as ``ckpt=``, found in the run store on resume, and read by the
library's loaders. A weights-only-clean file that *names* code to call (a checkpoint class or a component
``_target_`` such as ``os.system``) is refused too, for checkpoints and for ``from_pretrained``. The one opt-in is
``ECGBENCH_ALLOW_PICKLE=<file>``, logged.
"""

from __future__ import annotations

import json
import logging
import subprocess

import pytest
import torch
from fault_tools import QUICK, REPO, TINY

from ecg_data.integrity import ALLOW_PICKLE_ENV, CorruptFileError, UntrustedFileError, safe_torch_load

pytestmark = pytest.mark.faults


def _one_error_line(out: subprocess.CompletedProcess) -> str:
    assert out.returncode == 2, (out.stdout + out.stderr)[-3000:]
    assert "Traceback" not in out.stderr
    errors = [l for l in out.stderr.splitlines() if l.startswith("error:")]
    assert len(errors) == 1, out.stderr[-3000:]
    return errors[0]


def test_safe_load_refuses_a_code_running_pickle(tmp_path, evil_ckpt) -> None:
    path = evil_ckpt(tmp_path / "evil.ckpt")
    with pytest.raises(UntrustedFileError) as err:
        safe_torch_load(path)
    msg = str(err.value)
    assert str(path) in msg and "posix.system" in msg and ALLOW_PICKLE_ENV in msg and "\n" not in msg
    assert not (tmp_path / "pwned").exists()


def test_opt_in_names_the_file_and_is_logged(tmp_path, evil_ckpt, monkeypatch, caplog) -> None:
    path = evil_ckpt(tmp_path / "evil.ckpt")
    other = evil_ckpt(tmp_path / "other.ckpt")
    monkeypatch.setenv(ALLOW_PICKLE_ENV, str(other))  # trusting another file does not trust this one
    with pytest.raises(UntrustedFileError):
        safe_torch_load(path)
    assert not (tmp_path / "pwned").exists()
    monkeypatch.setenv(ALLOW_PICKLE_ENV, str(path))
    with caplog.at_level(logging.WARNING, logger="ecg_data.integrity"):
        safe_torch_load(path)  # the user said they trust it: the full unpickle runs (here: creates pwned)
    assert (tmp_path / "pwned").exists()
    assert any(str(path) in r.getMessage() and ALLOW_PICKLE_ENV in r.getMessage() for r in caplog.records)


def test_truncated_checkpoint_is_a_clear_error(tmp_path) -> None:
    good = tmp_path / "good.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1000)}}, good)
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CorruptFileError, match=r"bad\.ckpt: not a readable checkpoint"):
        safe_torch_load(bad)


def test_library_loaders_refuse_it(tmp_path, evil_ckpt) -> None:
    from baselines.heartlang.model import HeartLangMSM
    from ecg_text_align.melp import load_ecg_tower
    from ecg_text_align.module import PretrainModule

    path = evil_ckpt(tmp_path / "evil.ckpt")
    with pytest.raises(UntrustedFileError, match="evil.ckpt"):
        PretrainModule.from_checkpoint(path)
    with pytest.raises(UntrustedFileError, match="evil.ckpt"):
        load_ecg_tower(torch.nn.Linear(1, 1), str(path))
    with pytest.raises(UntrustedFileError, match="evil.ckpt"):
        HeartLangMSM.load_vq(object.__new__(HeartLangMSM), path)
    assert not (tmp_path / "pwned").exists()


def test_a_checkpoint_naming_code_to_call_is_refused(tmp_path) -> None:
    """Weights-only clean, but its class or a component ``_target_`` is ``os.system``: nothing is called."""
    from ecg_text_align.module import PretrainModule

    cmd = f"touch {tmp_path / 'pwned'}"
    a = tmp_path / "class.ckpt"
    torch.save({"state_dict": {}, "ecg_text_align_class": "os:system", "hyper_parameters": {"command": cmd}}, a)
    with pytest.raises(UntrustedFileError, match=r"class\.ckpt.*'os:system' is not a PretrainModule"):
        PretrainModule.from_checkpoint(a)
    b = tmp_path / "target.ckpt"
    torch.save(
        {
            "state_dict": {},
            "ecg_text_align_class": "baselines.merl.model:MERL",
            "hyper_parameters": {"ecg_encoder": {"_target_": "os.system", "command": cmd}},
        },
        b,
    )
    with pytest.raises(UntrustedFileError, match=r"target\.ckpt.*names 'os\.system' to call"):
        PretrainModule.from_checkpoint(b)
    assert not (tmp_path / "pwned").exists()


def test_from_pretrained_refuses_a_config_naming_code(tmp_path) -> None:
    from baselines.random_init.model import RandomInitEncoder
    from ecg_text_align.pretrained import from_pretrained, save_pretrained

    export = save_pretrained(RandomInitEncoder(), tmp_path / "export")
    cfg_file = export / "config.json"
    good = json.loads(cfg_file.read_text())
    cmd = f"touch {tmp_path / 'pwned'}"
    for bad, pattern in (
        ({**good, "class": "os:system", "init": {"command": cmd}}, "'os:system' is neither"),
        ({**good, "class": "subprocess:Popen", "init": {"args": cmd, "shell": True}}, "Popen"),
        (
            {**good, "init": {**good["init"], "tower": {"_target_": "os.system", "command": cmd}}},
            r"names 'os\.system' to call",
        ),
    ):
        cfg_file.write_text(json.dumps(bad))
        with pytest.raises(UntrustedFileError, match=pattern):
            from_pretrained(export)
        assert not (tmp_path / "pwned").exists()
    cfg_file.write_text(json.dumps(good))
    assert from_pretrained(export) is not None  # the untouched export still loads


def test_ckpt_argument_refused_in_one_line(tmp_path, evil_ckpt, cli) -> None:
    path = evil_ckpt(tmp_path / "evil.ckpt")
    out = cli([*QUICK, f"ckpt={path}", "stages=[zero_shot]", f"run_store={tmp_path / 'runs'}"])
    line = _one_error_line(out)
    assert str(path) in line and "posix.system" in line and "refused" in line
    assert not (tmp_path / "pwned").exists()
    assert not list(tmp_path.rglob("zero_shot*.json"))


@pytest.mark.slow
def test_resume_from_a_planted_run_store_checkpoint_is_refused(tmp_path, evil_ckpt, cli) -> None:
    """A pre-empted MERL run leaves ``last.ckpt`` in the run store; someone replaces it; the rerun resumes from it."""
    args = [*QUICK, *TINY["merl"], f"run_store={tmp_path / 'runs'}", "stages=[pretrain]"]
    first = cli(args)
    assert first.returncode == 0, first.stderr[-3000:]
    run_dir = next((tmp_path / "runs" / "merl").glob("*-seed0"))
    last = run_dir / "merl" / "checkpoints" / "last.ckpt"
    assert last.is_file()
    for marker in run_dir.rglob("COMPLETE.json"):  # as if killed before the stage completed
        marker.unlink()
    evil_ckpt(last)
    line = _one_error_line(cli(args))
    assert str(last) in line and "posix.system" in line
    assert not (tmp_path / "pwned").exists()


def test_checkpoints_we_write_hold_plain_data_only(tmp_path) -> None:
    """Hyperparameters holding config objects, paths, numpy scalars and enums are saved as plain data: the
    checkpoint reads back with weights_only=True and the values are equal as plain data."""
    import enum

    import numpy as np
    from omegaconf import OmegaConf

    from baselines.merl.model import MERL
    from ecg_text_align.module import PretrainModule

    class Colour(enum.Enum):
        RED = "red"

    ckpt = {
        "state_dict": {"w": torch.ones(2)},
        "hyper_parameters": {
            "cfg": OmegaConf.create({"a": [1, 2], "b": {"c": "d"}}),
            "root": tmp_path,
            "lr": np.float32(0.5),
            "steps": np.int64(3),
            "colour": Colour.RED,
            "shape": (np.int64(2), 3),
        },
    }
    PretrainModule.on_save_checkpoint(object.__new__(MERL), ckpt)
    torch.save(ckpt, tmp_path / "plain.ckpt")
    back = safe_torch_load(tmp_path / "plain.ckpt")
    assert back["hyper_parameters"] == {
        "cfg": {"a": [1, 2], "b": {"c": "d"}},
        "root": str(tmp_path),
        "lr": 0.5,
        "steps": 3,
        "colour": "red",
        "shape": (2, 3),
    }
    assert back["ecg_text_align_class"] == "baselines.merl.model.MERL"  # the one dotted form


def test_resume_from_a_planted_checkpoint_is_refused_by_fit(tmp_path, evil_ckpt) -> None:
    """``ecg_text_align.train.fit`` (what every method stage calls) resuming from a replaced ``last.ckpt``."""
    import sys

    here = str(REPO / "tests" / "text_align")
    if here not in sys.path:
        sys.path.insert(0, here)
    from text_align_stubs import ToyDataModule, ToyPretrain  # noqa: E402

    from ecg_text_align.train import fit

    cfg = {"max_epochs": 1, "max_steps": 2, "checkpoint_every_n_steps": 1, "seed": 0, "enable_progress_bar": False}
    fit(ToyPretrain(lr=1e-2), ToyDataModule(n=16, batch_size=4), cfg, tmp_path / "run")
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert safe_torch_load(last)["global_step"] == 2  # our own checkpoint: plain data
    evil_ckpt(last)
    with pytest.raises(UntrustedFileError, match=r"last\.ckpt: refused to load: it holds 'posix\.system'"):
        fit(ToyPretrain(lr=1e-2), ToyDataModule(n=16, batch_size=4), {**cfg, "max_steps": 4}, tmp_path / "run")
    assert not (tmp_path / "pwned").exists()
