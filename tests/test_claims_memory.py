"""Claims ledger, module 04: the memory calculator against published numbers (../shared/reference_figures.md)."""

from __future__ import annotations

import pytest

from workshop_utils.memory import Architecture, estimate_memory, zero_model_states_bytes

GB = 1e9  # ZeRO's GB are decimal: 16 × 7.5e9 B = 120 GB exactly (reference_figures §1)


def test_llama2_7b_parameter_count_exact():
    """reference_figures §3.1: Llama-2-7B has 6,738,415,616 parameters (derived + Keras/Ollama/PEFT logs)."""
    assert Architecture.from_name("llama-2-7b").n_params == 6_738_415_616


def test_llama2_7b_model_states_about_108_gb():
    """ZeRO §3.1 (reference_figures §1.1, §7.1): 16 bytes/param for mixed-precision Adam -> 107.8 GB; 1 % tolerance."""
    b = estimate_memory("llama-2-7b", precision="mixed", optimizer="adamw", batch=1, seq=4096)
    assert b.model_states / GB == pytest.approx(108, rel=0.01)
    assert b.model_states == pytest.approx(16 * 6_738_415_616, rel=1e-6)  # + 4 B per `step` tensor


def test_llama2_7b_with_activations_exceeds_140_gb():
    """The seed's "140 GB+", derived at Llama-2's 4k context (Table 1 of arXiv:2307.09288).

    Korthikanti et al. (reference_figures §7.2), micro-batch 1, seq 4096, no recomputation: 104 GB of
    activations on top of 108 GB of model states. Even with a kernel that stores no attention scores
    (our HF-Llama/SDPA model), micro-batch 2 at seq 4096 is already past 140 GB.
    """
    paper = estimate_memory("llama-2-7b", "mixed", "adamw", batch=1, seq=4096, activation_model="korthikanti")
    assert paper.total / GB > 140
    assert paper.activations / GB == pytest.approx(32 * 4096 * 4096 * (34 + 5 * 32) / GB, rel=1e-9)
    sdpa = [
        estimate_memory("llama-2-7b", "mixed", "adamw", b, 4096, activation_model="hf-llama") for b in (1, 2)
    ]
    assert sdpa[0].total / GB < 140 < sdpa[1].total / GB  # the smallest such micro-batch is 2


ZERO_WORKED = {0: 120.0, 1: 31.4, 2: 16.6, 3: 1.9}  # ZeRO Fig. 1, §5.1-5.3 (Ψ = 7.5B, N_d = 64)


@pytest.mark.parametrize("stage,paper_gb", ZERO_WORKED.items())
def test_zero_worked_example(stage, paper_gb):
    """reference_figures §1.2: 120 / 31.4 / 16.6 / 1.9 GB; the text rounds 1.875 to 1.9, so 1.5 % for it."""
    got = zero_model_states_bytes(7_500_000_000, stage, 64) / GB
    assert got == pytest.approx(paper_gb, rel=0.015 if stage == 3 else 0.01)


# ZeRO Table 1 (§5, p.11; reference_figures §1.3): per-device GB for P_os, P_os+g, P_os+g+p.
TABLE1 = {
    (7.5e9, 1): (120, 120, 120), (7.5e9, 4): (52.5, 41.3, 30), (7.5e9, 16): (35.6, 21.6, 7.5),
    (7.5e9, 64): (31.4, 16.6, 1.88), (7.5e9, 256): (30.4, 15.4, 0.47), (7.5e9, 1024): (30.1, 15.1, 0.12),
    (128e9, 1): (2048, 2048, 2048), (128e9, 4): (896, 704, 512), (128e9, 16): (608, 368, 128),
    (128e9, 64): (536, 284, 32), (128e9, 256): (518, 263, 8), (128e9, 1024): (513, 257, 2),
    (1e12, 1): (16000, 16000, 16000), (1e12, 4): (7000, 5500, 4000), (1e12, 16): (4750, 2875, 1000),
    (1e12, 64): (4187, 2218, 250), (1e12, 256): (4046, 2054, 62.5), (1e12, 1024): (4011, 2013, 15.6),
}  # fmt: skip


@pytest.mark.parametrize("psi,n_d", TABLE1)
def test_zero_table1_within_1_percent(psi, n_d):
    """Every cell within 1 %. Gotcha (§11.1): some cells are truncated (4187.5 -> 4187), some rounded,
    and 7.5B at N_d=1024 P_os+g+p prints 0.12 for 0.1171875 (2.4 % off), so that cell gets 3 %."""
    for stage, paper in zip((1, 2, 3), TABLE1[(psi, n_d)]):
        got = zero_model_states_bytes(int(psi), stage, n_d) / GB
        tol = 0.03 if (psi, n_d, stage) == (7.5e9, 1024, 3) else 0.01
        assert got == pytest.approx(paper, rel=tol), (psi, n_d, stage, got, paper)
