"""`python -m chaos` (`make chaos`): the fault-injection run. See docs/chaos.md."""

import argparse
import os
import random
import sys

from chaos import run


def _interval(text: str) -> tuple[float, float]:
    low, _, high = text.partition(",")
    return float(low), float(high or low)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m chaos",
        description="Run Bazaar in its production shape on private PostgreSQL and Redis, shop "
        "over HTTP while killing processes and crashing services, then check the invariants.",
    )
    add = parser.add_argument
    add(
        "--seconds",
        type=float,
        default=float(os.environ.get("CHAOS_SECONDS", "120")),
        help="seconds of load and faults (default CHAOS_SECONDS or 120)",
    )
    add(
        "--seed",
        type=int,
        default=None,
        help="random seed of faults and shoppers (default: random)",
    )
    add("--shoppers", type=int, default=24, help="concurrent shoppers (default 24)")
    add("--products", type=int, default=24, help="products the shoppers buy (default 24)")
    add("--stock", type=int, default=25, help="starting stock of each of them (default 25)")
    add(
        "--fault-interval",
        type=_interval,
        default=(3.0, 6.0),
        metavar="MIN,MAX",
        help="seconds between two faults, uniformly drawn (default 3,6)",
    )
    add("--no-faults", action="store_true", help="a baseline: the same load without faults")
    add("--settle-seconds", type=float, default=150, help="longest wait for the queues to drain")
    add("--latency-ms", type=int, default=100, help="simulated processor latency (default 100)")
    add("--failure-rate", type=float, default=0.2, help="share of processor calls failing (0.2)")
    add(
        "--lost-response-rate",
        type=float,
        default=0.05,
        help="share of charges whose reply is lost, if the simulated processor supports it",
    )
    add("--outage-seconds", type=float, default=8, help="processor outage, if it supports one")
    add("--pg-down-seconds", type=float, default=3, help="how long PostgreSQL stays down")
    add(
        "--worker-command",
        choices=["auto", "qcluster"],
        default="auto",
        help="auto: run_worker where it exists; qcluster: plain Django-Q2 clusters, to compare",
    )
    args = parser.parse_args(argv)
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1, 1_000_000)
    return args


def main(argv: list[str] | None = None) -> int:
    return run.Run(parse_args(sys.argv[1:] if argv is None else argv)).execute()


if __name__ == "__main__":
    sys.exit(main())
