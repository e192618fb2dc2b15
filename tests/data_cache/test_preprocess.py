"""Each transform does what it claims; presets are keyed by every parameter and follow their papers' code."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ecg_data.preprocess import (
    PRESETS,
    Bandpass,
    Compose,
    CropPad,
    MinMaxNormalize,
    Preset,
    RandomLeadMask,
    Resample,
    ScaleToRange,
    Standardize,
    TrainStandardScaler,
    ZScore,
    get_preset,
)
from ecg_data.record import Record, RecordError


def _sines(freqs_hz: list[float], fs: float, seconds: float, amp: float = 1.0) -> np.ndarray:
    t = np.arange(int(round(fs * seconds))) / fs
    one = sum(amp * np.sin(2 * np.pi * f * t) for f in freqs_hz)
    return np.tile(one, (12, 1)).astype(np.float32)


def _peak_hz(x: np.ndarray, fs: float) -> float:
    spec = np.abs(np.fft.rfft(x))
    return float(np.fft.rfftfreq(x.shape[-1], 1 / fs)[np.argmax(spec)])


@pytest.mark.parametrize(("fs_in", "fs_out"), [(500, 100), (100, 500), (257, 100), (500, 400)])
def test_resample_length_and_frequency_content(fs_in: int, fs_out: int) -> None:
    x = _sines([5.0], fs_in, 10.0)
    y, fs = Resample(fs_out)(x, fs_in)
    assert fs == fs_out and y.dtype == np.float32
    assert y.shape == (12, 10 * fs_out)
    assert _peak_hz(y[0], fs_out) == pytest.approx(5.0, abs=0.11)
    # amplitude is kept away from the edges
    mid = y[0, fs_out * 2 : fs_out * 8]
    assert np.abs(mid).max() == pytest.approx(1.0, abs=0.02)


def test_resample_same_rate_is_identity() -> None:
    x = _sines([3.0], 500, 1.0)
    y, fs = Resample(500)(x, 500.0)
    assert fs == 500 and np.array_equal(x, y)


def test_bandpass_keeps_in_band_and_attenuates_out_of_band_sines() -> None:
    fs = 100.0
    bp = Bandpass(0.67, 40.0, order=5)
    for f, passes in [(10.0, True), (0.1, False), (47.0, False)]:
        x = _sines([f], fs, 60.0)
        y, _ = bp(x, fs)
        gain = np.sqrt(np.mean(y[0, 1000:5000] ** 2) / np.mean(x[0, 1000:5000] ** 2))  # RMS, away from the edges
        if passes:
            assert gain == pytest.approx(1.0, abs=0.02), f
        else:
            assert gain < 0.05, f


def test_bandpass_is_zero_phase() -> None:
    fs = 500.0
    x = _sines([8.0], fs, 10.0)
    y, _ = Bandpass(0.5, 40.0)(x, fs)
    lag = np.argmax(np.correlate(y[0, 1000:4000], x[0, 1000:4000], mode="full")) - 2999
    assert lag == 0


def test_bandpass_rejects_cutoff_above_nyquist_and_too_short_signals() -> None:
    with pytest.raises(ValueError, match="fs/2"):
        Bandpass(0.5, 60.0)(_sines([1.0], 100, 10.0), 100.0)
    with pytest.raises(ValueError, match="too short"):
        Bandpass(0.5, 40.0)(np.zeros((12, 20), np.float32), 100.0)


def test_croppad_crops_start_and_center_and_pads_with_zeros_at_the_end() -> None:
    x = np.tile(np.arange(10, dtype=np.float32), (12, 1))
    assert CropPad(4)(x, 1.0)[0][0].tolist() == [0, 1, 2, 3]
    assert CropPad(4, "center")(x, 1.0)[0][0].tolist() == [3, 4, 5, 6]
    padded = CropPad(13)(x, 1.0)[0]
    assert padded.shape == (12, 13) and padded[0].tolist() == list(range(10)) + [0, 0, 0]
    assert CropPad(10)(x, 1.0)[0] is x
    with pytest.raises(ValueError):
        CropPad(4, "end")  # type: ignore[arg-type]


def test_minmax_is_global_over_the_record() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 300)).astype(np.float32)
    x[3] *= 5  # one loud lead: global (not per-lead) scaling keeps the others inside (0, 1)
    y, _ = MinMaxNormalize()(x, 500.0)
    assert y.min() == 0.0 and y.max() == pytest.approx(1.0)
    assert y[0].max() < 0.99 and y[0].min() > 0.01
    np.testing.assert_allclose(y, (x - x.min()) / (x.max() - x.min()), rtol=1e-5, atol=1e-6)


def test_minmax_and_zscore_guard_constant_input() -> None:
    flat = np.full((12, 50), 3.0, np.float32)
    for t in (MinMaxNormalize(), MinMaxNormalize(eps=1e-8), ZScore(), ZScore(per="record", eps=1e-6)):
        y, _ = t(flat, 100.0)
        assert np.isfinite(y).all() and not y.any(), t


@pytest.mark.parametrize("per", ["lead", "record"])
def test_zscore_stats(per: str) -> None:
    rng = np.random.default_rng(1)
    x = (rng.normal(size=(12, 1000)) * np.arange(1, 13)[:, None] + 7).astype(np.float32)
    y, _ = ZScore(per=per)(x, 500.0)  # type: ignore[arg-type]
    axis = -1 if per == "lead" else None
    np.testing.assert_allclose(y.mean(axis=axis), 0.0, atol=1e-5)
    np.testing.assert_allclose(y.std(axis=axis), 1.0, atol=1e-4)
    if per == "record":  # relative lead amplitudes survive
        assert y[11].std() > y[0].std() * 5


def test_zscore_constant_lead_becomes_zero_others_standardised() -> None:
    x = np.random.default_rng(2).normal(size=(12, 200)).astype(np.float32)
    x[4] = 1.5
    y, _ = ZScore()(x, 500.0)
    assert not y[4].any() and y[0].std() == pytest.approx(1.0, abs=1e-4)


def test_random_lead_mask_rate_and_whole_leads() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2000, 12, 16) + 10.0  # no zeros in the input
    y = RandomLeadMask(0.3, generator=g)(x)
    masked = (y == 0).all(dim=-1)
    assert masked.float().mean().item() == pytest.approx(0.3, abs=0.01)
    assert torch.equal(y[~masked], x[~masked])  # kept leads untouched, masking is all-or-nothing per lead
    single = RandomLeadMask(0.5)(torch.ones(12, 8))
    assert single.shape == (12, 8)
    assert torch.equal(RandomLeadMask(0.0)(x), x) and not RandomLeadMask(1.0)(x).any()
    with pytest.raises(ValueError):
        RandomLeadMask(0.5)(torch.ones(3, 8))


def test_compose_chains_in_order() -> None:
    x = _sines([5.0], 500, 10.0)
    y, fs = Compose((Resample(100), CropPad(800)))(x, 500.0)
    assert fs == 100 and y.shape == (12, 800)
    assert Compose((Resample(100),)).spec()["transforms"][0] == {"type": "Resample", "fs": 100}


def test_all_paper_presets_registered_with_distinct_keys_and_sources() -> None:
    names = [
        "esi",
        "heartlang",
        "heartlang-cpsc2018",
        "heartlang-csn",
        "heartlang-ptbxl",
        "melp",
        "merl",
        "raw100",
        "raw500",
    ]
    assert PRESETS.names() == names
    keys = {get_preset(n).key() for n in names}
    assert len(keys) == len(names)
    assert all(get_preset(n).source for n in names)


def test_preset_key_changes_with_every_parameter_and_is_stable() -> None:
    def make(**kw: object) -> Preset:
        args: dict[str, object] = dict(low=0.67, high=40.0, order=5, length=1000, fs=100, where="start")
        args.update(kw)
        return Preset(
            name="p", fs=args["fs"], length=args["length"],  # type: ignore[arg-type]
            transforms=(Resample(args["fs"]), Bandpass(args["low"], args["high"], args["order"]),  # type: ignore[arg-type]
                        CropPad(args["length"], args["where"])),  # type: ignore[arg-type]
        )  # fmt: skip

    base = make().key()
    assert make().key() == base
    variants = [make(low=0.5), make(high=45.0), make(order=4), make(length=999), make(fs=200), make(where="center")]
    keys = [v.key() for v in variants]
    assert base not in keys and len(set(keys)) == len(keys)
    assert Preset("p", 100, 10, (MinMaxNormalize(),)).key() != Preset("p", 100, 10, (MinMaxNormalize(1e-8),)).key()


def _record(fs: float, seconds: float, seed: int = 0) -> Record:
    rng = np.random.default_rng(seed)
    sig = rng.normal(size=(12, int(fs * seconds))).astype(np.float32)
    return Record(signal=sig, fs=fs, record_id="r1", meta={"path": "r1.hea"})


def test_melp_and_merl_presets_match_their_original_formula() -> None:
    rec = _record(500, 12.0)
    raw = rec.signal.astype(np.float64)[:, :5000]
    expected = (raw - raw.min()) / (raw.max() - raw.min() + 1e-8)  # MELP/MERL finetune_dataset.py
    for name in ("melp", "merl"):
        np.testing.assert_allclose(get_preset(name).apply(rec), expected, rtol=1e-5, atol=1e-6)


def test_esi_preset_matches_its_original_formula() -> None:
    rec = _record(500, 10.0)
    t = torch.from_numpy(rec.signal.astype(np.float64))
    expected = (t - t.mean(dim=[0, 1], keepdim=True)) / (t.std(dim=[0, 1], keepdim=True) + 1e-6)  # ESI ecg_loader.py
    np.testing.assert_allclose(get_preset("esi").apply(rec), expected.numpy(), rtol=1e-5, atol=1e-5)


def test_heartlang_preset_output_and_padding_info() -> None:
    x, info = get_preset("heartlang").apply_with_info(_record(500, 8.0))
    assert x.shape == (12, 1000) and x.dtype == np.float32
    assert info.padded and not info.cropped and info.n_samples_before_croppad == 800
    assert abs(float(x[:, :800].mean())) < 0.05  # the 0.67 Hz high-pass removed the offset


def test_preset_turns_bad_signals_into_record_errors() -> None:
    rec = _record(500, 10.0)
    rec.signal[2, 7] = np.nan
    with pytest.raises(RecordError, match=r"r1\.hea: NaN/Inf"):
        get_preset("raw500").apply(rec)
    with pytest.raises(RecordError, match="too short"):
        get_preset("heartlang").apply(_record(500, 0.1))


# --- HeartLang's downstream presets (PKUDigitalHealth/HeartLang @a08afd8, datasets/dataset_preprocess/) ------------


def test_scale_to_range_is_one_min_max_over_the_record_to_minus3_plus3() -> None:
    x = np.random.default_rng(0).normal(size=(12, 500)).astype(np.float32)
    x[2] *= 4  # one lead much larger: a per-lead scaling would hide it
    y, fs = ScaleToRange(-3.0, 3.0)(x, 500.0)
    assert fs == 500.0 and y.dtype == np.float32
    assert y.min() == pytest.approx(-3.0) and y.max() == pytest.approx(3.0)
    lo, hi = float(x.min()), float(x.max())
    np.testing.assert_allclose(y, -3 + 6 * (x.astype(np.float64) - lo) / (hi - lo), rtol=1e-6, atol=1e-6)
    assert np.ptp(y[2]) > 2 * np.ptp(y[0])  # relative lead amplitudes kept
    flat, _ = ScaleToRange(-3.0, 3.0)(np.full((12, 10), 2.5, np.float32), 500.0)
    assert np.array_equal(flat, np.zeros((12, 10), np.float32))  # constant record -> midpoint, not NaN
    with pytest.raises(ValueError, match="low < high"):
        ScaleToRange(3.0, -3.0)


def test_heartlang_cpsc2018_scales_the_padded_record_before_resampling() -> None:
    """make_cpsc_dataset.py:83-99: pad to 5000, min-max to [-3, 3] with the padding included, then 500 -> 100 Hz."""
    rng = np.random.default_rng(1)
    sig = np.zeros((12, 5000), np.float32)
    sig[:, :2500] = 1.0 + 0.2 * rng.random((12, 2500))  # all positive: the padded zeros are the record's minimum
    rec = Record(signal=sig, fs=500.0, record_id="c1", meta={"path": "c1.hea"})
    x, info = get_preset("heartlang-cpsc2018").apply_with_info(rec)
    assert x.shape == (12, 1000) and not info.padded
    np.testing.assert_allclose(x[:, 600:950], -3.0, atol=1e-3)  # the padding became -3 (away from the edges)
    scaled, _ = ScaleToRange(-3.0, 3.0)(sig, 500.0)
    np.testing.assert_allclose(x, Resample(100)(scaled, 500.0)[0], atol=1e-6)  # scale first, then resample
    assert not any(isinstance(t, Bandpass) for t in get_preset("heartlang-cpsc2018").transforms)  # no filter


def test_heartlang_csn_scales_resamples_then_band_passes() -> None:
    """make_csn_datasets.py:85-94: min-max to [-3, 3], 500 -> 100 Hz, Butterworth 0.67-40 Hz order 5 at 100 Hz."""
    rec = _record(500, 10.0, seed=2)
    rec.signal[:] += 5.0  # an offset the band-pass removes
    x = get_preset("heartlang-csn").apply(rec)
    scaled, _ = ScaleToRange(-3.0, 3.0)(rec.signal, 500.0)
    expected, _ = Bandpass(0.67, 40.0, order=5)(*Resample(100)(scaled, 500.0))
    np.testing.assert_allclose(x, expected, atol=1e-6)
    assert abs(float(x.mean())) < 0.05


def test_train_standard_scaler_fits_one_mean_and_std_over_all_values() -> None:
    """utils.py:315: ``StandardScaler().fit(np.vstack(X_train).flatten()[:, None])`` -- one scalar pair, ddof=0."""
    rng = np.random.default_rng(3)
    rows = rng.normal(0.2, 0.5, size=(7, 12, 100))
    rows[:, 4] *= 10  # a lead with a larger scale does not get its own statistics
    step, n = TrainStandardScaler().fit([rows[:3], rows[3:4], rows[4:]], fitted_on="abc")
    assert n == rows.size and step.fitted_on == "abc"
    assert step.mean == pytest.approx(rows.mean(), rel=1e-12) and step.std == pytest.approx(rows.std(ddof=0), rel=1e-12)
    sklearn = pytest.importorskip("sklearn.preprocessing")
    ss = sklearn.StandardScaler().fit(rows.reshape(-1, 1))
    assert step.mean == pytest.approx(float(ss.mean_[0]), rel=1e-12)
    assert step.std == pytest.approx(float(ss.scale_[0]), rel=1e-12)
    x = rows[0].astype(np.float32)
    y, _ = step(x, 100.0)
    np.testing.assert_allclose(y, (x - step.mean) / step.std, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(step.batch(torch.from_numpy(x)[None])[0].numpy(), y, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="standard deviation"):
        TrainStandardScaler().fit([np.ones((2, 12, 10))], fitted_on="x")
    with pytest.raises(ValueError, match="positive std"):
        Standardize(0.0, 0.0)


def test_unfitted_train_scaler_is_a_bug_not_a_skipped_record() -> None:
    preset = get_preset("heartlang-ptbxl")
    assert preset.fit_step() == TrainStandardScaler("train")
    with pytest.raises(RuntimeError, match="not fitted"):
        preset.apply(_record(500, 10.0))  # a RecordError would silently drop every record
    with pytest.raises(ValueError, match="last step"):
        Preset("p", 100, 1000, (TrainStandardScaler(), CropPad(1000))).fit_step()
    assert get_preset("heartlang").fit_step() is None


def test_fitted_preset_key_carries_the_statistics_and_what_they_were_fitted_on() -> None:
    preset = get_preset("heartlang-ptbxl")
    assert preset.without_last() is get_preset("raw100")  # shares raw100's cache
    a = preset.with_fitted(Standardize(0.01, 0.2, fitted_on="train-A"))
    keys = {
        a.key(),
        preset.key(),
        preset.with_fitted(Standardize(0.02, 0.2, "train-A")).key(),
        preset.with_fitted(Standardize(0.01, 0.3, "train-A")).key(),
        preset.with_fitted(Standardize(0.01, 0.2, "train-B")).key(),
    }
    assert len(keys) == 5
    assert a.name == preset.name and a.split_normalization() == (get_preset("raw100"), a.transforms[-1])
