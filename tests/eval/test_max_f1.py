"""Max-F1 threshold and accuracy: closed form, against scikit-learn, and the zero-shot result fields."""

import numpy as np
import pytest

from ecg_eval.metrics import accuracy_at, binary_f1, max_f1_threshold, threshold_metrics


def test_max_f1_closed_form() -> None:
    y = np.array([1, 1, 0, 1, 0, 0])
    s = np.array([0.9, 0.8, 0.7, 0.6, 0.2, 0.1])
    f1, thr = max_f1_threshold(y, s)
    # cut at 0.6: TP 3, FP 1, FN 0 -> 6/7; cut at 0.8: TP 2, FN 1 -> 0.8
    assert f1 == pytest.approx(6 / 7) and thr == 0.6
    assert accuracy_at(y, s, thr) == pytest.approx(5 / 6)
    assert binary_f1(y, s >= thr) == pytest.approx(6 / 7)


def test_max_f1_ties_and_sklearn() -> None:
    from sklearn.metrics import f1_score, precision_recall_curve

    rng = np.random.default_rng(0)
    for _ in range(20):
        y = rng.integers(0, 2, 60)
        y[0] = 1
        s = np.round(rng.normal(size=60) + y, 1)  # many ties
        f1, thr = max_f1_threshold(y, s)
        p, r, _ = precision_recall_curve(y, s)
        ref = np.max(np.divide(2 * p * r, p + r, out=np.zeros_like(p), where=(p + r) > 0))
        assert f1 == pytest.approx(ref)
        assert f1 == pytest.approx(f1_score(y, s >= thr))


def test_max_f1_needs_a_positive() -> None:
    with pytest.raises(ValueError, match="no positive"):
        max_f1_threshold(np.zeros(4), np.arange(4.0))


def test_threshold_chosen_on_val_applied_on_test() -> None:
    y_val = np.array([[1], [1], [0], [0]])
    s_val = np.array([[0.9], [0.8], [0.3], [0.1]])  # any cut in (0.3, 0.8] is perfect; the highest is 0.8
    y_test = np.array([[1], [1], [0], [0]])
    s_test = np.array([[0.85], [0.5], [0.4], [0.1]])  # at 0.8 only one of two positives is found
    out = threshold_metrics(y_val, s_val, y_test, s_test, ["X"])
    x = out["per_class"]["X"]
    assert x["threshold"] == 0.8 and x["val_f1"] == 1.0
    assert x["f1"] == pytest.approx(2 / 3) and x["accuracy"] == 0.75
    assert x["oracle_max_f1"] == 1.0 and x["oracle_accuracy"] == 1.0  # chosen on test: optimistic
    assert out["macro"]["f1"] == pytest.approx(2 / 3) and out["threshold_split"] == "val"


def test_threshold_metrics_excludes_with_reason() -> None:
    y_val = np.array([[0, 1], [0, 0]])
    y_test = np.array([[1, 1], [0, 1]])
    s = np.array([[0.5, 0.5], [0.1, 0.2]])
    out = threshold_metrics(y_val, s, y_test, s, ["A", "B"])
    assert "validation" in out["excluded_classes"]["A"]
    assert out["excluded_classes"]["B"] == "no negative in the evaluated split"
    assert out["per_class"] == {} and out["macro"]["f1"] is None


def test_zero_shot_result_has_threshold_metrics(fake_task, loader, prompt_file, tmp_path, Mock) -> None:
    from ecg_eval.harness import evaluate
    from ecg_eval.results import read_result

    task, _ = fake_task
    r = evaluate(
        Mock(),
        task,
        "zero_shot",
        results_root=tmp_path / "r",
        embed_cache=tmp_path / "e",
        split_loader=loader,
        n_resamples=50,
        prompt_file=prompt_file,
    )
    tm = read_result(r["result_path"])["threshold_metrics"]
    assert tm["threshold_split"] == "val"
    assert tm["per_class"]["A"]["f1"] == 1.0 and tm["per_class"]["A"]["accuracy"] == 1.0  # feature 0 separates A
    # B's scores are all tied: the only cut calls every record positive -> F1 = 2*0.5/(1+0.5), accuracy 0.5
    assert tm["per_class"]["B"]["f1"] == pytest.approx(2 / 3) and tm["per_class"]["B"]["accuracy"] == 0.5
    assert "C" in tm["excluded_classes"]
    assert r["n_val"] == len(task.splits["val"])


def test_default_prompts_cover_g12ec_and_code() -> None:
    from ecg_data.readers.code15 import CODE_CLASSES
    from ecg_data.readers.g12ec import CHALLENGE_SCORED
    from ecg_eval.prompts import class_prompts

    g = class_prompts(sorted(set(CHALLENGE_SCORED.values())), dataset="g12ec")
    assert g["STach"] and g["NSR"][0] == "sinus rhythm"
    for ds in ("code15", "code_test"):
        c = class_prompts(list(CODE_CLASSES), dataset=ds)
        assert c["ST"][0] == "sinus tachycardia" and c["1dAVb"][0] == "first degree AV block"
