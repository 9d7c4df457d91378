"""Unit tests for workshop_utils.precision, with the published format numbers (reference_figures §7.3)."""

from __future__ import annotations

import math

import pytest
import torch

from workshop_utils import precision as P

# reference_figures §7.3 (IEEE 754 binary16 / bfloat16 / binary32)
PUBLISHED = {
    "fp16": dict(layout=(1, 5, 10), max=65504.0, min_normal=2**-14, min_subnormal=2**-24, eps=2**-10),
    "bf16": dict(layout=(1, 8, 7), max=3.3895313892515355e38, min_normal=1.1754943508222875e-38,
                 min_subnormal=9.183549615799121e-41, eps=2**-7),
    "fp32": dict(layout=(1, 8, 23), max=3.4028234663852886e38, min_normal=2**-126, min_subnormal=2**-149,
                 eps=1.1920929e-07),
}  # fmt: skip


@pytest.mark.parametrize("name", PUBLISHED)
def test_formats_from_torch_match_published_and_bit_formula(name):
    pub, got, derived = PUBLISHED[name], P.format_info(name), P.format_from_bits(name, *P.LAYOUTS[name][1:])
    assert (got.sign_bits, got.exponent_bits, got.fraction_bits) == pub["layout"] == P.LAYOUTS[name]
    for key in ("max", "min_normal", "min_subnormal", "eps"):
        assert getattr(got, key) == pytest.approx(pub[key], rel=1e-7), key
        assert getattr(derived, key) == pytest.approx(getattr(got, key), rel=1e-12), key


def test_bit_strings():
    assert P.bit_string(1.0, "fp16") == "0 01111 0000000000"
    assert P.bit_string(65504, "fp16") == "0 11110 1111111111"
    assert P.bit_string(-2.5, "bf16") == "1 10000000 0100000"
    bf16, fp32 = (P.bit_string(-3.140625, n).replace(" ", "") for n in ("bf16", "fp32"))
    assert bf16 == fp32[:16]  # bf16 is the top half of fp32


def test_overflow_demo_matches_published_rounding():
    d = P.overflow_demo()  # reference_figures §7.3: 65519 -> 65504, 65520 -> inf
    assert d["fp16(65519)"] == 65504 and math.isinf(d["fp16(65520)"]) and math.isinf(d["fp16(60000)*2"])
    assert math.isnan(d["fp16 inf-inf"]) and math.isfinite(d["bf16(1e5)"])


def test_underflow_and_scaling():
    g = P.small_gradients(20_000)
    lost = P.underflow_fraction(g, torch.float16)
    assert lost > 0.25  # values below 2^-25 (half the smallest subnormal) round to zero
    assert P.underflow_fraction(g, torch.float16, scale=2.0**15) < lost / 10
    assert P.underflow_fraction(g, torch.bfloat16) == 0.0  # fp32's exponent range
    with pytest.raises(ValueError, match="scale"):
        P.underflow_fraction(g, torch.float16, scale=0)


def test_grad_scaler_rescues_fp16_and_bf16_needs_none():
    rows = P.grad_scaler_demo(steps=3)
    assert all(r["fp16 grad"] == 0.0 for r in rows)  # underflow without scaling
    assert math.isinf(rows[0]["fp16 grad with GradScaler"])  # 2^16 overflows fp16: step skipped
    assert rows[1]["scale"] == rows[0]["scale"] / 2
    assert rows[-1]["fp16 grad with GradScaler"] == pytest.approx(1e-8, rel=0.01)
    assert rows[-1]["bf16 grad"] == pytest.approx(1e-8, rel=0.01)


def test_bad_format_name():
    with pytest.raises(ValueError, match="fp8"):
        P.format_info("fp8")
    with pytest.raises(ValueError, match="valid"):
        P.bit_string(1.0, "int8")


def test_train_in_precision_runs_and_is_deterministic():
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=1, num_attention_heads=2,
                      num_key_value_heads=1, vocab_size=128, max_position_embeddings=32)  # fmt: skip
    ids = torch.arange(2000) % 16  # a repeating pattern: learnable in a few steps

    def run(dtype):
        torch.manual_seed(0)
        return P.train_in_precision(LlamaForCausalLM(cfg), ids, 10, 4, 16, dtype)

    a, b, c = run(None), run(None), run(torch.bfloat16)
    assert a.losses == b.losses and len(a.losses) == 10 and a.peak_bytes > 0
    assert a.losses[-1] < a.losses[0] and abs(c.losses[-1] - a.losses[-1]) < 0.2
    with pytest.raises(ValueError, match="steps"):
        P.train_in_precision(LlamaForCausalLM(cfg), ids, 0, 1, 1, None)
