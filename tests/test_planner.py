"""Unit tests, module 09: the planner's formulas, rules, bad input and CLI (workshop_utils.planner)."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest

from workshop_utils import planner as P
from workshop_utils.hardware import gpu
from workshop_utils.memory import estimate_memory, kv_cache_bytes
from workshop_utils.planner.__main__ import main
from workshop_utils.quant import LORA_STATE_BYTES
from workshop_utils.scaling import CHINCHILLA_TEX

A = P.Assumptions()


def bot(**changes) -> P.Scenario:
    return replace(P.scenarios()["support-bot"], **changes)


def test_flops_per_token():
    assert P.training_flops_per_token(1e9, "full") == 6e9
    assert P.training_flops_per_token(1e9, "lora", adapter=1e6) == 4e9 + 6e6
    with pytest.raises(ValueError, match="method"):
        P.training_flops_per_token(1e9, "qlora")


def test_gpu_hours_formula_and_bad_input():
    h100 = gpu("h100-80gb")
    assert P.gpu_hours(1e9, 1e12, "full", h100, 0.5) == pytest.approx(6e21 / (h100.peak_flops * 0.5 * 3600))
    with pytest.raises(ValueError, match="mfu"):
        P.gpu_hours(1e9, 1e12, "full", h100, 0.0)


def test_finetune_memory_pieces():
    arch = P.base_model("llama-2-7b")[0]
    adapters = P.adapter_params("llama-2-7b", A.lora_r, A.lora_targets)
    frozen = estimate_memory(arch, "bf16", "none", 1, 512, "full", activation_model="hf-llama")
    lora = P.finetune_bytes("llama-2-7b", "lora", 1, 512, A)
    assert lora == pytest.approx(
        2 * arch.n_params + LORA_STATE_BYTES * adapters + frozen.activations + frozen.transient
    )
    assert lora - P.finetune_bytes("llama-2-7b", "lora", 1, 512, A, paged=True) == pytest.approx(8 * adapters)
    qlora, full = (
        P.finetune_bytes("llama-2-7b", "qlora", 1, 512, A),
        P.finetune_bytes("llama-2-7b", "full", 1, 512, A),
    )
    assert qlora < lora < full
    assert full > 16 * arch.n_params  # module 04: 16 bytes/param of model states, plus activations
    with pytest.raises(ValueError, match="method"):
        P.finetune_bytes("llama-2-7b", "adapters", 1, 512, A)


def test_zero_stages_shrink_full_ft_memory():
    need = [P.finetune_bytes("llama-2-7b", "full", 1, 512, A, 8, st) for st in range(4)]
    assert need == sorted(need, reverse=True) and need[0] > 2 * need[3]


def test_chinchilla_tokens_round_trip():
    n = 7e9
    d = P.chinchilla_tokens(n)
    assert CHINCHILLA_TEX.n_opt(6 * n * d) == pytest.approx(n, rel=1e-9)


def test_serving_plan_is_bandwidth_bound_and_meets_latency():
    s = bot()
    plan = P.serving_plan(s, A)
    arch, dev = P.base_model(s.model)[0], gpu(s.gpu)
    kv = kv_cache_bytes(arch, plan.batch, s.input_tokens + s.output_tokens // 2)
    assert plan.step_s == pytest.approx((2 * arch.n_params + kv) / (dev.bandwidth * A.bandwidth_efficiency))
    assert plan.step_s * 1e3 <= s.latency_ms
    assert plan.memory_per_gpu <= dev.memory_bytes * A.headroom
    busy = P.serving_plan(replace(s, requests_per_day=s.requests_per_day * 100), A)
    assert busy.replicas == math.ceil(s.requests_per_day * 100 / 86400 * A.peak_to_mean / plan.requests_per_s)


def test_model_too_big_for_the_hardware_is_an_explicit_no_fit():
    s = bot(model="llama-2-70b", gpu="t4-16gb")
    assert P.serving_plan(s, A) is None
    options, rec = P.plan(s)
    assert all(o.excluded for o in options if o.key != "api")
    assert "does not fit" in next(o for o in options if o.key == "self-host").excluded


def test_api_cost_formula():
    s = bot()
    api = next(o for o in P.price_options(s) if o.key == "api")
    p = P.EXAMPLE_PRICES
    per_month = s.requests_per_day * 730 / 24
    assert api.monthly == pytest.approx(
        per_month * (s.input_tokens * p.api_input + s.output_tokens * p.api_output) / 1e6
    )
    assert api.one_off == 0 and api.serving_gpus is None


@pytest.mark.parametrize(
    "changes, key, words",
    [
        (dict(privacy=True), "api", "privacy"),
        (dict(existing_model_passes=False), "self-host", "quality bar"),
        (dict(labelled_examples=0), "lora", "no labelled examples"),
        (dict(domain_shift=True), "qlora", "domain shift"),
        (dict(domain_shift=False), "cpt", "no domain shift"),
        (dict(domain_shift=True, domain_tokens=0.0), "cpt", "no domain text"),
        (dict(), "scratch", "Chinchilla-optimal"),
        (dict(), "full", "does not fit"),
    ],
)
def test_each_rule_excludes_its_option(changes, key, words):
    option = next(o for o in P.price_options(bot(**changes)) if o.key == key)
    assert words in option.excluded


def test_scratch_is_allowed_with_enough_data_and_time():
    s = bot(model="llama-2-7b", gpu="h100-80gb", n_gpus=8, domain_tokens=1e12, max_train_days=10_000)
    scratch = next(o for o in P.price_options(s) if o.key == "scratch")
    assert scratch.excluded == "" and scratch.wall_days > 30


def test_recommend_takes_the_cheapest_allowed_and_says_why():
    s = bot()
    options, rec = P.plan(s)
    allowed = [o for o in options if not o.excluded]
    assert rec.choice == min(allowed, key=lambda o: o.tco(s.months)).key == "api"
    assert rec.reasons[-1].startswith("cheapest over 12 months")
    nothing = P.recommend(s, [replace(o, excluded="x") for o in options])
    assert nothing.choice is None and "relax" in nothing.reasons[-1]


def test_traffic_flips_the_choice_from_api_to_self_host():
    sweep = P.sensitivity(bot(), "requests_per_day", [1e3, 1e4, 1e5, 1e6])
    assert [c for _, c, _ in sweep][0] == "api" and [c for _, c, _ in sweep][-1] == "self-host"
    assert P.flips(sweep)[0][2:] == ("api", "self-host")
    cheap = P.price_sensitivity(bot(requests_per_day=1e5), [0.2, 20.0])
    assert [c for _, c, _ in cheap] == ["self-host", "api"]
    with pytest.raises(ValueError, match="not a Scenario field"):
        P.sensitivity(bot(), "traffic", [1])


@pytest.mark.parametrize(
    "changes, words",
    [
        (dict(n_gpus=0), "n_gpus"),
        (dict(requests_per_day=-1), "requests_per_day"),
        (dict(labelled_examples=-5), "labelled_examples"),
        (dict(gpu="tpu-v5"), "unknown GPU type"),
        (dict(model="gpt2"), "unknown base"),
        (dict(input_tokens=1.5), "input_tokens"),
    ],
)
def test_bad_scenarios_are_refused(changes, words):
    with pytest.raises(ValueError, match=words):
        bot(**changes)


def test_missing_price_and_bad_assumptions():
    with pytest.raises(ValueError, match="--gpu-price l4-24gb"):
        P.price_options(bot(gpu="l4-24gb"), P.Prices({}, 1, 1, "none"))
    with pytest.raises(ValueError, match="headroom"):
        P.Assumptions(headroom=1.5)
    with pytest.raises(ValueError, match="lora_targets"):
        P.Assumptions(lora_targets="everything")


def test_worked_scenarios_follow_their_rules():
    choices = {name: P.plan(s)[1].choice for name, s in P.scenarios().items()}
    assert choices == {"support-bot": "api", "code-assistant": "cpt", "ticket-classifier": "self-host",
                       "regulated-records": "qlora", "new-language": "cpt"}  # fmt: skip


def test_cli_json_list_and_errors(capsys):
    result = main(["--scenario", "regulated-records", "--json"])
    assert result["choice"] == "qlora"
    assert json.loads(capsys.readouterr().out)["choice"] == "qlora"
    main(["--list"])
    assert "support-bot" in capsys.readouterr().out
    out = main(["--scenario", "support-bot", "--gpu-price", "a100-80gb=0.1", "--requests-per-day", "1e6"])
    assert out["choice"] == "self-host" and "your prices" in out["prices"]
    for bad in (["--scenario", "support-bot", "--gpus", "a100-80gb"], ["--scenario", "support-bot", "--gpus", "tpu:8"],
                ["--scenario", "support-bot", "--gpu-price", "a100=cheap"], []):  # fmt: skip
        with pytest.raises(SystemExit) as err:
            main(bad)
        assert err.value.code == 2
