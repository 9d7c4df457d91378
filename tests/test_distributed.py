"""Module 05 unit tests that run in this process: counters, formulas, bad inputs, accelerate configs."""

from __future__ import annotations

import os
from pathlib import Path
from unittest import mock

import pytest
import torch
import torch.distributed as dist

from workshop_utils.distributed import comm
from workshop_utils.distributed.analysis import formula_model_state_bytes
from workshop_utils.distributed.launch import failure_summary, launch, torchrun_command
from workshop_utils.distributed.train import RunSpec, parse_strategy, reference_losses, synthetic_batch

CONFIGS = Path(comm.__file__).parent / "accelerate_configs"


@pytest.fixture
def one_rank_group():
    """A 1-rank gloo group in this process (a HashStore: no sockets)."""
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def test_comm_counter_counts_payloads_and_restores(one_rank_group):
    original = dist.all_reduce
    x = torch.ones(10)  # 40 bytes
    with comm.CommCounter() as counter:
        dist.all_reduce(x)
        dist.all_reduce(x)
        dist.all_gather_single(torch.empty(10), x)  # output 40 bytes
        dist.reduce_scatter_single(torch.empty(10), torch.ones(10))  # input 40 bytes
        dist.broadcast(x[:3], src=0)
    assert counter.snapshot() == {"all_reduce": 80, "reduce_scatter": 40, "all_gather": 40, "broadcast": 12}
    assert counter.snapshot("calls")["all_reduce"] == 2
    assert counter.snapshot("elements")["broadcast"] == 3
    assert dist.all_reduce is original  # unpatched on exit
    dist.all_reduce(x)  # not counted any more
    assert counter.snapshot()["all_reduce"] == 80
    with pytest.raises(ValueError, match="what must be"):
        counter.snapshot("watts")


def test_paper_volume_and_ring_bytes():
    assert comm.paper_volume({"all_reduce": 10, "all_gather": 10}) == 30
    assert comm.zero_comm_volume_elements(100, 0) == 200
    assert comm.zero_comm_volume_elements(100, 2) == 200
    assert comm.zero_comm_volume_elements(100, 3) == 300  # ZeRO §7: 1.5x the baseline
    assert comm.ring_bytes_sent("all_reduce", 100, 4) == pytest.approx(150)  # 2 (N-1)/N
    assert comm.ring_bytes_sent("all_gather", 100, 4) == pytest.approx(75)
    assert comm.ring_bytes_sent("all_reduce", 100, 1) == 0
    with pytest.raises(ValueError, match="op must be"):
        comm.ring_bytes_sent("gossip", 1, 2)
    with pytest.raises(ValueError, match="world_size"):
        comm.ring_bytes_sent("all_reduce", 1, 0)
    with pytest.raises(ValueError, match="unknown ops"):
        comm.paper_volume({"gossip": 1})
    with pytest.raises(ValueError, match="stage"):
        comm.zero_comm_volume_elements(10, 4)


def test_parse_strategy_and_bad_names():
    assert parse_strategy("zero3+bf16") == ("zero3", True)
    assert parse_strategy("ddp") == ("ddp", False)
    for bad in ("zero4", "ddp+fp8", "fsdp"):
        with pytest.raises(ValueError, match="valid"):
            parse_strategy(bad)


def test_synthetic_batch_is_seeded_and_learnable():
    spec = RunSpec(batch_size=4, context=16)
    x, y = synthetic_batch(spec, 0, 64)
    x2, _ = synthetic_batch(spec, 0, 64)
    assert x.shape == y.shape == (4, 16) and torch.equal(x, x2)
    assert not torch.equal(x, synthetic_batch(spec, 1, 64)[0])
    assert torch.equal(x[:, 1:], y[:, :-1])  # targets are the inputs shifted by one


def test_reference_training_lowers_the_loss_deterministically():
    spec = RunSpec(steps=3)
    losses = reference_losses(spec)
    assert losses == reference_losses(spec)
    assert losses[-1] < losses[0]


def test_formula_matches_zero_paper_in_its_own_precision():
    # The paper's numbers: with P=2, G=2, K=12 the stage formulas give 16Ψ, 4Ψ+12Ψ/N, 2Ψ+14Ψ/N, 16Ψ/N.
    from workshop_utils.memory import zero_model_states_bytes

    psi, n = 1000, 4
    assert zero_model_states_bytes(psi, 0, n) == 16 * psi
    assert zero_model_states_bytes(psi, 2, n) == 2 * psi + 14 * psi / n
    # Our fp32 adaptation of DDP: 4 + 4 + 8 = 16 bytes per parameter as well.
    report = {"psi": psi, "world_size": n, "zero_stage": 0, "bf16": False, "strategy": "ddp"}
    assert formula_model_state_bytes(report) == 16 * psi


def test_launcher_rejects_bad_arguments():
    with pytest.raises(ValueError, match="nproc"):
        torchrun_command(0, ["x.py"])
    with pytest.raises(ValueError, match="at most one"):
        launch(2, module="a", script="b.py")
    with pytest.raises(ValueError, match="timeout_s"):
        launch(2, timeout_s=0)
    cmd = torchrun_command(2, ["-m", "m"])
    assert "127.0.0.1:0" in cmd  # port 0: the rendezvous binds a free port itself


def test_failure_summary_prefers_the_root_cause_over_peer_echoes():
    output = "\n".join(
        [
            "[rank0]: Traceback (most recent call last):",
            "[rank0]: RuntimeError: Connection closed by peer [127.0.0.1]:1234",
            "[rank1]: Traceback (most recent call last):",
            '[rank1]:   File "x.py", line 3',
            "[rank1]: ValueError: the real bug",
        ]
    )
    summary = failure_summary(output)
    assert "root cause, rank 1" in summary and "ValueError: the real bug" in summary
    assert failure_summary("no traceback\nat all") == "no traceback\nat all"


@pytest.mark.parametrize("name", ["ddp", "fsdp", "deepspeed_zero3"])
def test_accelerate_configs_load_and_validate(name):
    from accelerate.commands.config.config_args import ClusterConfig, load_config_from_file
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser

    path = CONFIGS / f"{name}.yaml"
    config = load_config_from_file(str(path))  # accelerate's own loader: unknown keys raise
    assert isinstance(config, ClusterConfig)
    expected = {"ddp": "MULTI_GPU", "fsdp": "FSDP", "deepspeed_zero3": "DEEPSPEED"}[name]
    assert config.distributed_type.value == expected
    args = launch_command_parser().parse_args(["--config_file", str(path), "train.py"])
    _validate_launch_command(args)  # what `accelerate launch --config_file` does before starting
    if name == "fsdp":
        from accelerate.utils import FullyShardedDataParallelPlugin, prepare_multi_gpu_env

        with mock.patch.dict(os.environ, prepare_multi_gpu_env(args)):
            plugin = FullyShardedDataParallelPlugin()
        assert plugin.fsdp_version == 2 and plugin.reshard_after_forward is True
        assert plugin.transformer_cls_names_to_wrap == ["LlamaDecoderLayer"]
    if name == "deepspeed_zero3":
        assert args.use_deepspeed and int(args.zero_stage) == 3
