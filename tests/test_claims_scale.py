"""Claims ledger, module 03: compute of real pre-training runs recomputed by 6ND (workshop_utils.scale).

Published values from data/published/pretraining.json (LLaMA-1/2, StarCoder, GPT-3; each row with its source,
location and tolerance) and planning.json (LLaMA-1's 65B tokens and GPU-hours, 7B's size); the A100 peak from
hardware.json. StarCoder's 320,256 GPU-hours is unverified (reference figures §4, §11.13) and not asserted.
"""

from __future__ import annotations

import pytest
from published_helpers import expect

from workshop_utils import published
from workshop_utils.hardware import gpu
from workshop_utils.params import count_parameters
from workshop_utils.quant import llama1_config
from workshop_utils.scale import (
    A100_BF16_PEAK,
    LLAMA2_PARAMS,
    PublishedRun,
    llama2_runs,
    mfu,
    pf_days,
    starcoder_run,
    time_at_our_speed,
)
from workshop_utils.scaling import training_flops

PT = "pretraining"
SECONDS_PER_DAY = 86_400


def test_a100_peak_is_the_catalogue_figure():
    """scale's peak is hardware.json's A100 row, converted from TFLOP/s (its source: reference figures §9)."""
    assert (
        A100_BF16_PEAK
        == gpu("a100-80gb").peak_flops
        == published.value("hardware", "a100-80gb/peak_tflops") * 1e12
    )


@pytest.mark.parametrize("size", ["7B", "13B", "70B"])
def test_llama2_exact_parameter_counts(size):
    """Llama-2 7B 6,738,415,616 (derived + verified-secondary); 13B and 70B derived by the same formula."""
    expect(PT, f"llama2_{size.lower()}_params", LLAMA2_PARAMS[size])


def test_llama2_total_gpu_hours():
    """Llama 2 Table 2: the four runs add up to the table's total ('3.3M GPU hours')."""
    expect(PT, "llama2_gpu_hours_total", sum(r.gpu_hours for r in llama2_runs()))


@pytest.mark.parametrize("size", ["7B", "13B", "70B"])
def test_llama2_6nd_implied_throughput_and_mfu(size):
    """The derived compute/MFU table (6ND over GPU-seconds, against 312 TFLOPS), each cell at its printed digits."""
    run = next(r for r in llama2_runs() if r.name.endswith(size))
    derived = published.group(PT, "llama2_6nd")
    for item, got in (
        ("flops", run.train_flops),
        ("tflops_per_gpu", run.flops_per_gpu / 1e12),
        ("mfu", run.mfu),
    ):
        fig = derived[f"{size}/{item}"]
        assert fig.agrees(got), fig.describe(got)


def test_starcoder_6nd_and_implied_mfu():
    """512 A100 x 24 days = 294,912 GPU-h; 6ND = 9.3e22 FLOPs -> 87.6 TFLOP/s per GPU = 28 % of 312 (derived)."""
    run = starcoder_run()
    expect(PT, "starcoder_gpu_hours", run.gpu_hours)
    expect(PT, "starcoder_6nd", run.train_flops)
    expect(PT, "starcoder_tflops_per_gpu", run.flops_per_gpu / 1e12)
    expect(PT, "starcoder_mfu", run.mfu)


def test_llama1_65b_throughput_claim():
    """LLaMA §2.4: 'around 380 tokens/sec/GPU on 2048 A100' -> 148.7 TFLOP/s (47.7 % of 312) and '1.4T tokens
    takes approximately 21 days'; Table 15's 1,022,362 GPU-hours imply the same tokens/s."""
    n = published.value(PT, "llama1_65b_params")
    run = PublishedRun("LLaMA-1 65B", n, published.value("planning", "llama1_65b_tokens"),
                       published.value("planning", "llama1_65b_gpu_hours"), "A100-80GB", A100_BF16_PEAK, "arXiv:2302.13971")  # fmt: skip
    tokens_per_s = published.value(PT, "llama1_65b_tokens_per_gpu_s")
    per_gpu = training_flops(n, tokens_per_s)  # FLOPs of one second's tokens: FLOP/s per GPU
    expect(PT, "llama1_65b_tflops_per_gpu", per_gpu / 1e12)
    expect(PT, "llama1_65b_mfu", mfu(tokens_per_s, training_flops(n, 1), A100_BF16_PEAK))
    days = time_at_our_speed(run, per_gpu * published.value(PT, "llama1_65b_gpus")) / SECONDS_PER_DAY
    expect(PT, "llama1_65b_days", days)
    expect(PT, "llama1_65b_tokens_per_gpu_s", run.flops_per_gpu / training_flops(n, 1))  # GPU-hours agree


def test_gpt3_175b_training_compute():
    """GPT-3 Table D.1: 174.6B parameters, 300B tokens: 3.14E+23 FLOPs = 3.64E+03 PF-days."""
    flops = training_flops(published.value(PT, "gpt3_table_d1_params"), published.value(PT, "gpt3_tokens"))
    expect(PT, "gpt3_train_flops", flops)
    expect(PT, "gpt3_pf_days", pf_days(flops))


@pytest.mark.parametrize(("size", "file", "key"), [("7B", "planning", "alpaca_params"), ("13B", PT, "llama1_13b_params"),
                                                   ("33B", PT, "llama1_33b_params"), ("65B", PT, "llama1_65b_params")])  # fmt: skip
def test_llama1_configs_reproduce_table2_sizes(size, file, key):
    """LLaMA Table 2's 6.7B / 13.0B / 32.5B / 65.2B from the LLaMA-1 configs, to the table's last digit."""
    expect(file, key, count_parameters(llama1_config(size)).total)


def test_pf_days_rejects_bad_input():
    with pytest.raises(ValueError, match="flops"):
        pf_days(0.0)
