"""Unit tests for workshop_utils.memory: formulas, calculator, bad input, measurement helpers."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from workshop_utils import memory as M

TINY = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, vocab_size=256, max_position_embeddings=64, tie_word_embeddings=False)  # fmt: skip


def tiny_model(seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(**TINY)
    config._attn_implementation = "sdpa"
    return LlamaForCausalLM(config)


def batch(b: int = 2, s: int = 16, v: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, v, (b, s), generator=g), torch.randint(0, v, (b, s), generator=g)


# --- ZeRO formulas --------------------------------------------------------------------------
@pytest.mark.parametrize("stage,expected", [(0, 16.0), (1, 4 + 12 / 8), (2, 2 + 14 / 8), (3, 16 / 8)])
def test_zero_stages_bytes_per_param(stage, expected):
    assert M.zero_model_states_bytes(1000, stage, 8) == pytest.approx(expected * 1000)


def test_zero_generalises_byte_widths():
    assert M.zero_model_states_bytes(10, 0, 4, k=8, param_bytes=4, grad_bytes=4) == 160
    assert M.zero_model_states_bytes(10, 2, 4, k=8, param_bytes=4, grad_bytes=4) == 40 + 120 / 4


@pytest.mark.parametrize(
    "kwargs,word",
    [({"psi": 0}, "psi"), ({"psi": -5}, "psi"), ({"stage": 4}, "stage"), ({"stage": -1}, "stage"),
     ({"n_d": 0}, "n_d"), ({"k": -1}, "k"), ({"param_bytes": -2}, "param_bytes")],
)  # fmt: skip
def test_zero_bad_input_names_argument(kwargs, word):
    args = {"psi": 100, "stage": 1, "n_d": 2, **kwargs}
    with pytest.raises(ValueError, match=word):
        M.zero_model_states_bytes(**args)


# --- calculator -----------------------------------------------------------------------------
def test_architecture_from_config_matches_model():
    model = tiny_model()
    arch = M.Architecture.from_config(model.config)
    assert arch.n_params == sum(p.numel() for p in model.parameters())
    linears = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    assert arch.matmul_params == linears and arch.kv_width == 32 and arch.head_dim == 16


def test_from_numbers_and_zero_sharding_agree_with_zero_formula():
    arch = M.Architecture.from_numbers(7_500_000_000, hidden=4096, n_layers=32, n_heads=32)
    for stage in range(4):
        b = M.estimate_memory(arch, "mixed", "adamw", zero_stage=stage, n_d=64)
        assert b.model_states == pytest.approx(M.zero_model_states_bytes(arch.n_params, stage, 64), rel=1e-9)


@pytest.mark.parametrize(
    "precision,optimizer,bytes_per_param",
    [("mixed", "adamw", 16), ("fp32", "adamw", 16), ("mixed", "adamw8bit", 2 + 2 + 4 + 2),
     ("fp32", "sgd_momentum", 12), ("bf16", "adamw", 8), ("mixed", "none", 4)],
)  # fmt: skip
def test_bytes_per_parameter(precision, optimizer, bytes_per_param):
    """TM101 (reference_figures §7.1): Adam 12 B of states incl. master, 8-bit 6, SGD momentum 8."""
    arch = M.Architecture.from_numbers(10**9, hidden=2048, n_layers=16, n_heads=16)
    b = M.estimate_memory(arch, precision, optimizer)
    assert b.model_states / arch.n_params == pytest.approx(bytes_per_param, rel=5e-3)  # + 8-bit absmax


def test_korthikanti_formula_and_checkpointing_variants():
    s, b, h, a = 2048, 1, 12288, 96  # GPT-3 175B, reference_figures §7.2: 2.869e9 B per layer
    assert M.korthikanti_layer_bytes(s, b, h, a) == pytest.approx(2.869e9, rel=1e-3)
    assert M.korthikanti_layer_bytes(s, b, h, a, "selective") == 34 * s * b * h
    assert M.korthikanti_layer_bytes(s, b, h, a, "full") == 2 * s * b * h


def test_levers_move_the_estimate_the_right_way():
    base = M.estimate_memory("llama-2-7b", batch=4, seq=2048)
    assert (
        M.estimate_memory("llama-2-7b", batch=4, seq=2048, checkpointing="full").activations
        < base.activations
    )
    assert M.estimate_memory("llama-2-7b", batch=1, seq=2048).activations == pytest.approx(
        base.activations / 4
    )
    assert M.estimate_memory("llama-2-7b", optimizer="adamw8bit", batch=4, seq=2048).total < base.total


def test_inference_kv_cache():
    arch = M.Architecture.from_name("llama-2-7b")
    b = M.estimate_memory(arch, "bf16", inference=True, batch=1, seq=4096)
    assert b.kv_cache == 2 * 32 * 4096 * 4096 * 2  # 2.1 GB: k and v, 32 layers, 4096 wide, bf16
    assert b.gradients == b.optimizer_states == 0 and b.weights == 2 * arch.n_params


def test_breakdown_table_units_and_plot():
    b = M.estimate_memory("llama-2-7b", batch=1, seq=4096)
    assert b.as_dict("GB")["total"] == pytest.approx(b.total / 1e9)
    assert b.as_dict("GiB")["total"] == pytest.approx(b.total / 2**30)
    assert "weights" in b.table() and "total" in b.table()
    import matplotlib

    matplotlib.use("Agg")
    ax = b.plot(label="7B")
    assert len(ax.patches) == len(M.COMPONENTS)


@pytest.mark.parametrize(
    "kwargs,word",
    [({"precision": "fp8"}, "precision"), ({"optimizer": "adam"}, "optimizer"), ({"batch": 0}, "batch"),
     ({"seq": -1}, "seq"), ({"zero_stage": 4}, "zero_stage"), ({"n_d": 0}, "n_d"),
     ({"checkpointing": "some"}, "checkpointing"), ({"model": "llama-9b"}, "model")],
)  # fmt: skip
def test_calculator_bad_input_names_argument_and_valid_values(kwargs, word):
    args = {"model": "llama-2-7b", **kwargs}
    with pytest.raises(ValueError, match=word):
        M.estimate_memory(**args)


def test_bad_unit_and_model_type():
    with pytest.raises(ValueError, match="unit"):
        M.estimate_memory("gpt2").as_dict("TB")
    with pytest.raises(ValueError, match="model"):
        M.estimate_memory(3.5)


def test_cli_prints_table(capsys):
    out = M.main(
        ["llama-2-7b", "--optimizer", "adamw", "--precision", "mixed", "--batch", "1", "--seq", "4096"]
    )
    assert "total" in capsys.readouterr().out and out.settings["seq"] == 4096
    with pytest.raises(SystemExit):
        M.main(["7e9"])  # a raw count needs --hidden/--layers/--heads
    assert (
        M.main(["7e9", "--hidden", "4096", "--layers", "32", "--heads", "32"]).settings["params"] == 7 * 10**9
    )


# --- measurement helpers ----------------------------------------------------------------------
def test_tensor_bytes_counts_storages_once():
    t = torch.zeros(10, 10)
    assert M.tensor_bytes([t, t.view(100), t[0]]) == 400


def test_saved_tensor_meter_dedupes_and_skips_parameters():
    lin = torch.nn.Linear(8, 8, bias=False)
    x = torch.randn(4, 8, requires_grad=True)
    with M.SavedTensorMeter(lin) as meter:
        y = lin(x)  # saves x (and the weight, a parameter)
        z = y * y  # saves y twice: one storage
    assert meter.bytes == 4 * 8 * 4 + 4 * 8 * 4
    z.sum().backward()


def test_live_tracker_peak_and_free():
    with M.LiveMemoryTracker() as tr:
        a = torch.ones(1000)  # 4000 B
        b = a * 2  # 8000 B live
        del a, b
        c = torch.ones(10)
    assert tr.peak == 8000 and tr.current == 40
    del c


@pytest.mark.parametrize(
    "precision,dtype,autocast,optimizer,ckpt",
    [("fp32", torch.float32, None, "adamw", "none"), ("amp", torch.float32, torch.bfloat16, "adamw", "none"),
     ("bf16", torch.bfloat16, None, "sgd_momentum", "none"), ("fp32", torch.float32, None, "adamw8bit", "none"),
     ("fp32", torch.float32, None, "adamw", "full"), ("amp", torch.float32, torch.bfloat16, "none", "full")],
)  # fmt: skip
def test_prediction_matches_measurement(precision, dtype, autocast, optimizer, ckpt):
    """The HF-Llama model of what is saved equals the measurement; the peak within 2 %."""
    model = tiny_model().to(dtype)
    x, y = batch()
    measured = M.measure_training_step(model, x, y, optimizer, autocast, ckpt)
    arch = M.Architecture.from_config(model.config)
    pred = M.estimate_memory(arch, precision, optimizer, 2, 16, ckpt, activation_model="hf-llama")
    assert measured.weights == pred.weights and measured.gradients == pred.gradients
    assert measured.optimizer_states == pytest.approx(pred.optimizer_states + pred.master_weights, abs=0)
    assert measured.autocast_copies == pred.autocast_copies
    assert measured.activations == pred.activations
    assert measured.peak == pytest.approx(pred.peak, rel=0.02)


def test_measure_rejects_selective_and_unknown_optimizer():
    x, y = batch()
    with pytest.raises(ValueError, match="checkpointing"):
        M.measure_training_step(tiny_model(), x, y, checkpointing="selective")
    with pytest.raises(ValueError, match="optimizer"):
        M.measure_training_step(tiny_model(), x, y, optimizer="lion")
