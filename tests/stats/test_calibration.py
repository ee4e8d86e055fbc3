"""Expected calibration error by hand, temperature scaling on over-confident and calibrated
models, and the reliability diagram."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit, logit
from sklearn.calibration import calibration_curve
from sklearn.metrics import log_loss, roc_auc_score

from virnucpro_trainer.reports.figures import draw_reliability
from virnucpro_trainer.stats.calibration import (
    apply_platt,
    apply_temperature,
    expected_calibration_error,
    fit_platt,
    fit_temperature,
)


def simulated_logits(slope: float, n: int = 20_000, seed: int = 0):
    """Labels drawn from true viral probabilities q, and a model's logits slope * logit(q)."""
    rng = np.random.default_rng(seed)
    true_logit = rng.normal(0.0, 1.5, n)
    y = (rng.random(n) < expit(true_logit)).astype(np.int64)
    return y, slope * true_logit


def simulated(slope: float, n: int = 20_000, seed: int = 0):
    """The same, as reported probabilities p = sigmoid(slope * logit(q))."""
    y, z = simulated_logits(slope, n, seed)
    return y, expit(z)


def test_ece_zero_when_each_bin_is_calibrated():
    # 10 bins; bin of 0.25 holds 4 rows, 1 viral; bin of 0.75 holds 4 rows, 3 viral;
    # bin of 0.05: 20 rows, 1 viral
    p = np.array([0.25] * 4 + [0.75] * 4 + [0.05] * 20)
    y = np.array([1, 0, 0, 0] + [1, 1, 1, 0] + [1] + [0] * 19)
    assert expected_calibration_error(y, p, n_bins=10) == pytest.approx(0.0, abs=1e-12)


def test_ece_by_hand():
    # 5 bins of width 0.2: (0, 0.2], (0.2, 0.4], ..., 0 goes in the first, 0.2 (an edge) too.
    #   bin 1: p 0.0, 0.1, 0.2 -> mean 0.1, viral 1 of 3 -> |1/3 - 0.1|   = 0.2333..
    #   bin 3: p 0.5, 0.6      -> mean 0.55, viral 0 of 2 -> |0 - 0.55|   = 0.55
    #   bin 5: p 0.9, 1.0, 0.95 -> mean 0.95, viral 3 of 3 -> |1 - 0.95|  = 0.05
    # ECE = (3 * 0.2333.. + 2 * 0.55 + 3 * 0.05) / 8 = (0.7 + 1.1 + 0.15) / 8 = 0.24375
    p = np.array([0.0, 0.1, 0.2, 0.5, 0.6, 0.9, 1.0, 0.95])
    y = np.array([1, 0, 0, 0, 0, 1, 1, 1])
    assert expected_calibration_error(y, p, n_bins=5) == pytest.approx(0.24375)
    # the same bins as scikit-learn's reliability curve
    observed, predicted = calibration_curve(y, p, n_bins=5, strategy="uniform")
    assert observed == pytest.approx([1 / 3, 0.0, 1.0])
    assert predicted == pytest.approx([0.1, 0.55, 0.95])


def test_ece_matches_the_reliability_curve_on_random_data():
    y, p = simulated(3.0, n=5000, seed=1)
    observed, predicted = calibration_curve(y, p, n_bins=15, strategy="uniform")
    counts = np.histogram(p, bins=np.linspace(0, 1, 16))[0]
    counts = counts[counts > 0]
    expected = np.sum(counts * np.abs(observed - predicted)) / y.size
    assert expected_calibration_error(y, p) == pytest.approx(expected)


def test_temperature_softens_an_over_confident_model():
    y, z = simulated_logits(3.0)
    p = expit(z)
    temperature = fit_temperature(y, z)
    assert type(temperature) is float
    assert temperature == pytest.approx(3.0, abs=0.2)
    scaled = apply_temperature(z, temperature)
    assert scaled.dtype == np.float64
    assert log_loss(y, scaled) < log_loss(y, p) - 0.05
    assert expected_calibration_error(y, scaled) < expected_calibration_error(y, p)
    # a monotone map: the ranking, hence AUROC, is exactly the same
    assert np.array_equal(np.argsort(p, kind="stable"), np.argsort(scaled, kind="stable"))
    assert roc_auc_score(y, scaled) == roc_auc_score(y, p)


def test_temperature_near_one_on_a_calibrated_model():
    y, z = simulated_logits(1.0, seed=2)
    assert fit_temperature(y, z) == pytest.approx(1.0, abs=0.1)


def test_a_very_over_confident_model_gets_its_whole_temperature():
    # logits x12: from clipped probabilities the fit saw only +-16 and found T about 6.4
    y, z = simulated_logits(12.0, seed=3)
    temperature = fit_temperature(y, z)
    assert temperature == pytest.approx(12.0, rel=0.05)
    assert expected_calibration_error(y, apply_temperature(z, temperature)) < 0.01


def test_scaling_logits_never_ties_rows_that_were_apart():
    # the example: probabilities 1e-9 and 1e-10 were both clipped to 1e-7 (a tie)
    y = np.array([1, 0, 1, 0])
    z = logit(np.array([1e-9, 1e-10, 0.9, 0.1]))
    out = apply_temperature(z, 1.0)
    assert roc_auc_score(y, out) == roc_auc_score(y, z) == 0.75
    assert out[0] > out[1] > 0


def test_apply_temperature_to_logits():
    assert apply_temperature(np.array([0.0]), 7.0)[0] == pytest.approx(0.5)
    # T = 2 halves the logit: logit(0.9) = log 9 -> sigmoid(log 3) = 0.75
    assert apply_temperature(np.array([np.log(9.0)]), 2.0)[0] == pytest.approx(0.75)
    with pytest.raises(ValueError):
        apply_temperature(np.array([1.0]), 0.0)


def test_a_temperature_at_its_bound_is_warned_of(caplog):
    y = np.array([0, 0, 1, 1])
    z = np.array([-3.0, -2.0, 2.0, 3.0])  # perfectly separated: the loss falls as T does
    assert fit_temperature(y, z) == pytest.approx(0.05, rel=1e-2)
    assert "at the edge of its range" in caplog.text
    caplog.clear()
    y, z = simulated_logits(2.0, n=2000)
    fit_temperature(y, z)
    assert "edge" not in caplog.text


def test_bad_inputs():
    with pytest.raises(ValueError):
        expected_calibration_error([0, 1], [0.5])
    with pytest.raises(ValueError):
        fit_temperature([0, 2], [0.5, 0.5])
    with pytest.raises(ValueError, match="finite"):
        fit_temperature([0, 1], [0.5, np.inf])
    with pytest.raises(ValueError):
        expected_calibration_error([0, 1], [0.5, 1.5])


def test_reliability_plot_writes_a_png(tmp_path):
    y, z = simulated_logits(3.0, n=2000)
    p = expit(z)
    after = apply_temperature(z, fit_temperature(y, z))
    path = tmp_path / "reliability.png"
    draw_reliability(path, y, p, after, title="Reliability (validation)")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    single = tmp_path / "before_only.png"
    draw_reliability(single, y, p)
    assert single.stat().st_size > 1000


def test_logit_difference_convention():
    # for a 2-class softmax, logit(p_viral) is the viral-minus-host logit difference
    logits = np.array([[0.3, 1.7], [2.0, -1.0]])  # columns: host, viral
    p_viral = np.exp(logits[:, 1]) / np.exp(logits).sum(axis=1)
    assert logit(p_viral) == pytest.approx(logits[:, 1] - logits[:, 0])
    # so dividing both logits by T before the softmax is the same as apply_temperature
    scaled = np.exp(logits[:, 1] / 2.5) / np.exp(logits / 2.5).sum(axis=1)
    assert apply_temperature(logits[:, 1] - logits[:, 0], 2.5) == pytest.approx(scaled)


def test_platt_scaling_recovers_a_known_slope_and_intercept():
    rng = np.random.default_rng(3)
    scores = rng.uniform(0.01, 0.99, 200_000)
    y = (rng.uniform(size=scores.size) < expit(0.5 * logit(scores) - 1.0)).astype(int)
    a, b = fit_platt(y, scores)
    assert abs(a - 0.5) < 0.02 and abs(b + 1.0) < 0.02
    assert np.allclose(apply_platt(scores, (a, b)), expit(a * logit(scores) + b))


def test_platt_scaling_stays_finite_on_separated_units():
    y = np.array([0] * 8 + [1] * 8)
    scores = np.array([0.0] * 8 + [1.0] * 8)  # a vote that never errs
    a, b = fit_platt(y, scores)
    p = apply_platt(scores, (a, b))
    # Platt's targets: host units end near 1 / (8 + 2), viral near 9 / 10, not at 0 and 1
    assert np.isfinite([a, b]).all()
    assert np.allclose(p[:8], 0.1, atol=0.01) and np.allclose(p[8:], 0.9, atol=0.01)
