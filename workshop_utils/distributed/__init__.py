"""Module 05: data-parallel training on real `torch.distributed` (DDP, ZeRO-1/2/3 via FSDP2).

- `train`: the torchrun script (`python -m workshop_utils.distributed.train`), one JSON report per rank.
- `launch`: start it from a notebook cell (free port, cleanup of every child, errors surfaced fast).
- `zero1`: a hand-written ZeRO-1 sharded AdamW, one screen.
- `comm`: counting the bytes handed to each collective; the ZeRO §7 volume formulas.
"""
