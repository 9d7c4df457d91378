"""Unit tests of workshop_utils.scaling: formulas, closed form vs numerical optimum, fits on synthetic data."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from workshop_utils import scaling as sc

# --- compute -----------------------------------------------------------------------------------


def test_training_flops_is_6nd_and_vectorised():
    assert sc.training_flops(1e9, 20e9) == pytest.approx(1.2e20, rel=1e-12)
    out = sc.training_flops(np.array([1.0, 2.0]), np.array([3.0, 4.0]))
    np.testing.assert_allclose(out, [18.0, 48.0])


def test_attention_term_adds_12_l_d_t_per_token():
    base = sc.training_flops(1e6, 1e4)
    full = sc.training_flops_with_attention(1e6, 1e4, n_layers=2, d_attn=64, context=128)
    assert full - base == pytest.approx(12 * 2 * 64 * 128 * 1e4)


def test_tokens_per_param_and_budget_inverse():
    assert sc.tokens_per_param(70e9, 1.4e12) == pytest.approx(20.0)
    n = 3e5
    assert sc.training_flops(n, sc.tokens_for_budget(1e12, n)) == pytest.approx(1e12)
    assert sc.inference_flops(7e9, 10) == pytest.approx(1.4e11)


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf")])
def test_bad_n_d_c_raise_naming_the_argument(bad):
    with pytest.raises(ValueError, match="n_params"):
        sc.training_flops(bad, 1e9)
    with pytest.raises(ValueError, match="n_tokens"):
        sc.CHINCHILLA_TEX.loss(1e9, bad)
    with pytest.raises(ValueError, match="compute"):
        sc.CHINCHILLA_TEX.n_opt(bad)


# --- laws ----------------------------------------------------------------------------------------


def test_chinchilla_loss_formula():
    law = sc.ChinchillaLaw(E=1.0, A=2.0, B=3.0, alpha=0.5, beta=1.0)
    assert law.loss(4.0, 3.0) == pytest.approx(1.0 + 2.0 / 2.0 + 3.0 / 3.0)


def test_exponents_sum_to_one():
    for law in sc.LAWS:
        assert law.a + law.b == pytest.approx(1.0)


@pytest.mark.parametrize("law", sc.LAWS, ids=lambda x: x.name)
@pytest.mark.parametrize("compute", [1e18, 5.76e23, 1e26])
def test_closed_form_frontier_matches_numerical_minimum(law, compute):
    """Minimise L(N, C/6N) over log N with scipy; the closed form must agree."""
    res = minimize_scalar(
        lambda logn: law.loss(np.exp(logn), compute / (6 * np.exp(logn))),
        bounds=(np.log(1e3), np.log(1e15)),
        method="bounded",
        options={"xatol": 1e-10},
    )
    assert np.exp(res.x) == pytest.approx(law.n_opt(compute), rel=1e-4)
    assert 6 * law.n_opt(compute) * law.d_opt(compute) == pytest.approx(compute, rel=1e-12)
    assert law.loss_opt(compute) == pytest.approx(res.fun, abs=1e-9)


def test_compute_for_loss_inverts_loss_opt():
    law = sc.CHINCHILLA_TEX
    c = law.compute_for_loss(2.0)
    assert law.loss_opt(c) == pytest.approx(2.0, abs=1e-9)
    with pytest.raises(ValueError, match="target loss"):
        law.compute_for_loss(law.E - 0.1)


def test_kaplan_loss_n():
    assert sc.KAPLAN.loss_n(8.8e13) == pytest.approx(1.0)
    assert sc.KAPLAN.loss_n(2e9) / sc.KAPLAN.loss_n(1e9) == pytest.approx(2**-0.076)


def test_overtraining_tradeoff_is_consistent():
    law = sc.CHINCHILLA_TEX
    t = sc.overtraining_tradeoff(law, 8e9, 15e12, serving_tokens=1e14)
    # the compute-optimal model reaches the same loss with less training compute but more parameters
    assert law.loss(t.optimal_params, t.optimal_tokens) == pytest.approx(t.loss, abs=1e-8)
    assert t.optimal_params > t.small_params and t.extra_training_flops > 0
    assert t.net_flops_saved == pytest.approx(t.saved_flops_per_token * 1e14 - t.extra_training_flops)
    assert t.saved_flops_per_token * t.breakeven_tokens == pytest.approx(t.extra_training_flops)


# --- fits ----------------------------------------------------------------------------------------


def test_fit_power_law_recovers_coefficients():
    rng = np.random.default_rng(0)
    x = np.geomspace(1e10, 1e20, 12)
    y = 0.3 * x**0.47 * np.exp(rng.normal(0, 0.01, x.size))
    fit = sc.fit_power_law(x, y)
    assert fit.exponent == pytest.approx(0.47, abs=0.005)
    assert fit.coef == pytest.approx(0.3, rel=0.3)
    assert fit(1e15) == pytest.approx(0.3 * 1e15**0.47, rel=0.02)


def test_fit_power_law_bad_input():
    with pytest.raises(ValueError, match="at least 2 points"):
        sc.fit_power_law([1.0], [2.0])
    with pytest.raises(ValueError, match="same length"):
        sc.fit_power_law([1.0, 2.0], [2.0, 3.0, 4.0])
    with pytest.raises(ValueError, match="distinct"):
        sc.fit_power_law([2.0, 2.0], [1.0, 3.0])
    with pytest.raises(ValueError, match="y"):
        sc.fit_power_law([1.0, 2.0], [1.0, float("nan")])


def _isoflop_records(law: sc.ChinchillaLaw, budgets, n_sizes: int, noise: float, seed: int = 0):
    """Synthetic IsoFLOP sweep: sizes spread around the true optimum of each budget."""
    rng = np.random.default_rng(seed)
    n, c, loss = [], [], []
    for budget in budgets:
        sizes = law.n_opt(budget) * np.geomspace(1 / 8, 8, n_sizes)
        for size in sizes:
            n.append(size)
            c.append(budget)
            loss.append(law.loss(size, budget / (6 * size)) + rng.normal(0, noise))
    return np.array(n), np.array(c), np.array(loss)


def test_isoflop_recovers_frontier_exponent():
    law = sc.CHINCHILLA_TEX
    n, c, loss = _isoflop_records(law, np.geomspace(1e18, 1e22, 5), n_sizes=9, noise=0.0)
    fit = sc.fit_isoflop(n, c, loss)
    assert fit.a == pytest.approx(law.a, abs=0.01)  # a parabola in log N is only a local approximation
    assert fit.b == pytest.approx(law.b, abs=0.01)
    for prof in fit.profiles:
        assert prof.n_opt == pytest.approx(law.n_opt(prof.compute), rel=0.1)


def test_isoflop_bad_input():
    n, c, loss = _isoflop_records(sc.CHINCHILLA_TEX, [1e18, 1e19, 1e20], n_sizes=4, noise=0.0)
    bad = loss.copy()
    bad[2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        sc.fit_isoflop(n, c, bad)
    with pytest.raises(ValueError, match="at least 3 points"):
        sc.fit_isoflop(n[:2], c[:2], loss[:2])
    with pytest.raises(ValueError, match="params"):
        sc.fit_isoflop(-n, c, loss)
    with pytest.raises(ValueError, match="equal lengths"):
        sc.fit_isoflop(n, c, loss[:-1])


def test_isoflop_refuses_unbracketed_minima():
    """Losses that fall monotonically with N have no interior minimum: the fit must say so."""
    n = np.tile([1e6, 2e6, 4e6, 8e6], 3)
    c = np.repeat([1e15, 2e15, 4e15], 4)
    loss = 3.0 - 0.1 * np.log(n) - 0.01 * np.log(c)
    with pytest.raises(ValueError, match="usable minimum"):
        sc.fit_isoflop(n, c, loss)


def test_bootstrap_spreads_with_noise_and_centres_on_truth():
    law = sc.CHINCHILLA_TEX
    n, c, loss = _isoflop_records(law, np.geomspace(1e18, 1e21, 4), n_sizes=7, noise=0.002, seed=1)
    boots = sc.bootstrap_isoflop(n, c, loss, n_boot=200, seed=0)
    assert boots.size > 150  # few resamples lose their minima at this noise
    assert np.median(boots) == pytest.approx(law.a, abs=0.05)
    quiet = sc.bootstrap_isoflop(*_isoflop_records(law, np.geomspace(1e18, 1e21, 4), 7, 0.0002, 1), 200)
    assert np.std(quiet) < np.std(boots)


def test_parametric_fit_recovers_known_law():
    truth = sc.CHINCHILLA_TEX
    rng = np.random.default_rng(0)
    nn, dd = (g.ravel() for g in np.meshgrid(np.geomspace(1e7, 1e10, 6), np.geomspace(1e9, 1e12, 6)))
    loss = truth.loss(nn, dd) * np.exp(rng.normal(0, 0.001, nn.size))
    fit = sc.fit_parametric(nn, dd, loss, grid="small")
    assert fit.n_starts == 32
    assert fit.law.alpha == pytest.approx(truth.alpha, abs=0.02)
    assert fit.law.beta == pytest.approx(truth.beta, abs=0.02)
    assert fit.law.E == pytest.approx(truth.E, abs=0.03)
    assert fit.law.a == pytest.approx(truth.a, abs=0.02)


def test_parametric_fit_bad_input():
    with pytest.raises(ValueError, match="at least 5 points"):
        sc.fit_parametric([1e6, 2e6, 3e6, 4e6], [1e8] * 4, [3.0] * 4, grid="small")
    with pytest.raises(ValueError, match="loss"):
        sc.fit_parametric([1e6] * 5, [1e8] * 5, [3.0, 3.0, np.nan, 3.0, 3.0], grid="small")
    with pytest.raises(ValueError, match="grid must be one of"):
        sc.fit_parametric([1e6] * 5, [1e8] * 5, [3.0] * 5, grid="huge")


def test_huber_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    logn, logd = np.log(np.geomspace(1e6, 1e9, 7)), np.log(np.geomspace(1e8, 1e11, 7))
    logl = np.log(2.0 + rng.uniform(0, 0.5, 7))
    theta = np.array([6.0, 6.0, 0.5, 0.34, 0.28])
    value, grad = sc._huber_objective(theta, logn, logd, logl, delta=0.05)
    eps = 1e-6
    for i in range(5):
        step = np.zeros(5)
        step[i] = eps
        up = sc._huber_objective(theta + step, logn, logd, logl, 0.05)[0]
        down = sc._huber_objective(theta - step, logn, logd, logl, 0.05)[0]
        assert grad[i] == pytest.approx((up - down) / (2 * eps), rel=1e-4, abs=1e-9)


# --- the sweep script ------------------------------------------------------------------------------


def test_sweep_plan_spends_each_budget():
    from workshop_utils.config import get_profile
    from workshop_utils.sweep import plan_sweep, sweep_spec

    profile = get_profile("ci")
    spec = sweep_spec(profile)
    rows = plan_sweep(spec, profile, vocab_size=1024)
    assert len(rows) == len(spec.budgets) * len(spec.sizes) >= 12
    for row in rows:
        assert row["tokens"] == row["steps"] * spec.batch_size * spec.context
        assert abs(row["compute"] / row["budget"] - 1) <= 0.5 / row["steps"] + 1e-12  # rounding of steps only
        assert row["non_embedding_params"] < row["params"]


def test_sweep_model_config_bad_input():
    from workshop_utils.config import get_profile
    from workshop_utils.sweep import sweep_model_config

    with pytest.raises(ValueError, match="d_model"):
        sweep_model_config(get_profile("ci"), 1024, d_model=12, n_layers=1)
    with pytest.raises(ValueError, match="n_layers"):
        sweep_model_config(get_profile("ci"), 1024, d_model=16, n_layers=0)


def test_tiny_sweep_runs_saves_and_refuses_edits(tmp_path):
    """Two 15-step runs end to end; the stored file round-trips and an edited loss is refused."""
    import dataclasses
    import json

    from workshop_utils.config import get_profile
    from workshop_utils.device import pick_device
    from workshop_utils.sweep import SweepSpec, load_sweep, run_sweep, save_sweep, stored_label

    spec = SweepSpec(
        budgets=(1e8,),
        sizes=((8, 1), (16, 1)),
        batch_size=4,
        context=16,
        lr=1e-2,
        warmup_frac=0.1,
        eval_batches=2,
        cpu_bf16=False,
    )
    result = run_sweep(get_profile("ci"), pick_device(force_cpu=True), show_progress=False, spec=spec)
    assert [r["d_model"] for r in result["records"]] == [8, 16]
    assert all(np.isfinite(r["loss"]) and r["loss"] < np.log(1024) + 1 for r in result["records"])
    path = save_sweep(result, tmp_path / "s.json", command="test", spec=spec)
    again = load_sweep(path, spec)
    assert again["records"] == json.loads(json.dumps(result["records"]))
    assert again["provenance"]["command"] == "test" and again["provenance"]["created"]
    assert again["provenance"]["entry_module"] == "workshop_utils.sweep"
    assert "stored run of" in stored_label(again) and again["provenance"]["commit"] in stored_label(again)
    other = dataclasses.replace(spec, lr=3e-3)  # the current settings differ from the stored run's
    with pytest.raises(ValueError, match="stale.*input 'spec' changed"):
        load_sweep(path, other)
    data = json.loads(path.read_text())
    data["provenance"]["code"] = "0" * 16  # as if produced by other code
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="stale.*code changed"):
        load_sweep(path, spec)
    data["records"][0]["loss"] -= 0.1
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="edited"):
        load_sweep(path, spec)
    with pytest.raises(FileNotFoundError, match="workshop_utils.sweep"):
        load_sweep(tmp_path / "missing.json")


def test_stored_cpu_sweep_is_current_with_its_code_and_inputs():
    """The committed sweep loads: same code, settings, corpus, tokenizer and libraries as what produced it."""
    from workshop_utils.paths import repo_root
    from workshop_utils.sweep import load_sweep

    data = load_sweep(repo_root() / "data" / "scaling" / "sweep_cpu.json")
    assert data["profile"] == "cpu" and data["provenance"]["command"].startswith(
        "python -m workshop_utils.sweep"
    )
    budgets = sorted({r["budget"] for r in data["records"]})
    assert budgets[-1] / budgets[0] >= 30  # wide enough to constrain the exponent (issue: >= 30x in compute)


def test_sweep_plan_marks_runs_over_the_epoch_cap_with_a_reason():
    """A run that would repeat the corpus more than max_epochs times is planned but marked, not dropped."""
    import dataclasses

    from workshop_utils.config import get_profile
    from workshop_utils.sweep import plan_sweep, sweep_spec

    profile = get_profile("ci")
    spec = dataclasses.replace(sweep_spec(profile), max_epochs=1.0)
    rows = plan_sweep(spec, profile, vocab_size=1024, train_tokens=200_000)
    skipped = [r for r in rows if "skipped" in r]
    assert len(rows) == len(spec.budgets) * len(spec.sizes) and 0 < len(skipped) < len(rows)
    assert all(
        r["tokens"] > 200_000 and "epochs of the corpus > max_epochs 1" in r["skipped"] for r in skipped
    )
    assert all(r["tokens"] <= 200_000 for r in rows if "skipped" not in r)
    with pytest.raises(ValueError, match="train_tokens"):
        plan_sweep(spec, profile, vocab_size=1024)
