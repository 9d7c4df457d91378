"""CLI: `python -m workshop_utils.planner --scenario support-bot [--gpus a100-80gb:8] [--gpu-price a100-80gb=2.1]`."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, replace

from .inputs import EXAMPLE_PRICES, scenarios
from .options import LABELS, plan
from .views import options_table


def _gpus(text: str) -> tuple[str, int]:
    """'a100-80gb:8' -> ('a100-80gb', 8)."""
    kind, _, count = text.partition(":")
    if not count.isdigit() or int(count) <= 0:
        raise argparse.ArgumentTypeError(f"--gpus wants TYPE:COUNT with COUNT > 0, got {text!r}")
    return kind, int(count)


def _price(text: str) -> tuple[str, float]:
    """'a100-80gb=2.1' -> ('a100-80gb', 2.1)."""
    kind, _, usd = text.partition("=")
    try:
        value = float(usd)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--gpu-price wants TYPE=USD, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"--gpu-price must be > 0, got {text!r}")
    return kind, value


def parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    p = argparse.ArgumentParser(prog="python -m workshop_utils.planner", description=__doc__)
    p.add_argument("--scenario", choices=sorted(scenarios()), help="a worked scenario to start from")
    p.add_argument("--list", action="store_true", help="list the scenarios and exit")
    p.add_argument("--model", help="open base, e.g. llama-2-7b")
    p.add_argument("--gpus", type=_gpus, help="hardware on hand, TYPE:COUNT")
    for name in ("requests-per-day", "domain-tokens"):
        p.add_argument(f"--{name}", type=float)
    for name in ("input-tokens", "output-tokens", "labelled-examples", "months"):
        p.add_argument(f"--{name}", type=int)
    for name in ("privacy", "domain-shift", "existing-model-passes"):
        p.add_argument(f"--{name}", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--gpu-price", type=_price, action="append", default=[], help="TYPE=USD per GPU-hour")
    p.add_argument("--api-price", type=float, nargs=2, metavar=("IN", "OUT"), help="USD per 1M tokens")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    return p


def main(argv: list[str] | None = None) -> dict:
    """Price every option of a scenario and print the table and the recommendation; returns the plan."""
    args = parser().parse_args(argv)
    if args.list:
        for s in scenarios().values():
            print(f"{s.name:<20} {s.task}")
        return {}
    if not args.scenario:
        parser().error("--scenario is required (see --list); other flags override its fields")
    s = scenarios()[args.scenario]
    changes = {k: v for k, v in vars(args).items() if v is not None and k in asdict(s)}
    if args.gpus:
        changes.update(gpu=args.gpus[0], n_gpus=args.gpus[1])
    try:
        s = replace(s, **changes)
    except ValueError as err:
        parser().error(str(err))
    prices = replace(EXAMPLE_PRICES, gpu_hour={**EXAMPLE_PRICES.gpu_hour, **dict(args.gpu_price)})
    if args.api_price:
        prices = replace(prices, api_input=args.api_price[0], api_output=args.api_price[1])
    if args.gpu_price or args.api_price:
        prices = replace(prices, label="your prices (examples where you gave none)")
    try:
        options, rec = plan(s, prices)
    except ValueError as err:
        parser().error(str(err))
    result = {"scenario": asdict(s), "prices": prices.label, "options": options_table(options, s.months),
              "choice": rec.choice, "reasons": list(rec.reasons)}  # fmt: skip
    if args.json:
        print(json.dumps(result, indent=1, default=str))
        return result
    print(f"{s.name}: {s.task}  [{prices.label}]")
    for row in result["options"]:
        print(f"  {row['option']:<32} fits {row['fits']:<4} one-off ${row['one-off $']:>12,.0f}  "
              f"monthly ${row['monthly $']:>10,.0f}  {row['excluded by']}")  # fmt: skip
    print("recommended:", LABELS.get(rec.choice, "none"))
    for why in rec.reasons:
        print("  -", why)
    return result


if __name__ == "__main__":
    main()
