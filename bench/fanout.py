"""Event fan-out: the throughput run with 0 and with 10 subscribers.

    python -m bench.fanout                     # N=20000, 7 rounds
    python -m bench.fanout --quick --rounds 1

Each subscriber is a callable that counts the events it receives, either
called once per event or subscribed with ``batch=True`` (called once per
delivery with a list). After the run, every subscriber must have received
every event in the store's log (open, assign and close of each task): the
script checks the counts (exit status 1 when one is short) and reports events
that arrived out of log order. The settings take turns (none, per event,
batch, then batch, per event, none, ...) so that drift in the machine's load
hits all alike; the rates compared are the medians per setting. A short
warm-up run comes first and is left out (the first run in a process is slower).
"Drain" is how long after the last task was done the slowest subscriber still
had events to receive.

Target (issue 7): 10 subscribers slow the run by at most 10%.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

if not __package__:  # run as a file: python bench/fanout.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    add_log_option,
    configure_logs,
    machine,
    median,
    percentile,
    positive_int,
    verdict,
)
from bench.riaktq_run import (
    Delivery,
    RunResult,
    add_run_options,
    describe_config,
    run_config,
    run_riaktq,
    warm_up_config,
)

TARGET_SLOWDOWN = 10.0


def describe(subscribers: int, result: RunResult, setting: str) -> str:
    lat = result.latencies_ms
    kind = {"none": "", "each": " per event", "batch": " batch=True"}[setting]
    return (
        f"{subscribers:>2} subscribers{kind:<11}: {result.rate:7.0f} tasks/s"
        f" ({result.seconds:6.2f} s)"
        f" | p50 {percentile(lat, 50):6.1f} ms p99 {percentile(lat, 99):6.1f} ms"
        f" | {result.events} events logged, drain {result.drain_seconds:.2f} s"
    )


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.fanout", description=__doc__)
    add_run_options(p)
    p.add_argument("--subscribers", type=positive_int, default=10, help="subscribers to add")
    p.add_argument("--rounds", type=positive_int, default=7, help="runs per setting")
    add_log_option(p)
    args = p.parse_args(argv)
    configure_logs(args.logs)
    config = run_config(args)
    print(f"machine: {machine()}")
    print(f"{describe_config(config)} logs={args.logs}")
    # 0: none; "each": callables called once per event; "batch": batch=True subscribers
    settings = ("none", "each", "batch")
    rates: dict[str, list[float]] = {setting: [] for setting in settings}
    warm_up = warm_up_config(config)
    run_riaktq(warm_up, args.subscribers)
    print(f"(after a warm-up run with {args.subscribers} subscribers, N={warm_up.n}, left out)")
    deliveries: list[Delivery] = []
    for number in range(args.rounds):
        for setting in settings if number % 2 == 0 else reversed(settings):
            subscribers = 0 if setting == "none" else args.subscribers
            result = run_riaktq(config, subscribers, batch=setting == "batch")
            rates[setting].append(result.rate)
            print(describe(subscribers, result, setting), flush=True)
            if result.delivery is not None:
                deliveries.append(result.delivery)
    alone = median(rates["none"])
    complete = all(d.complete for d in deliveries)
    in_order = all(d.in_order for d in deliveries)
    print(
        f"every subscriber received every logged event: {verdict(complete)}"
        + ("" if complete else f" (received {[d.received for d in deliveries]})")
    )
    print(
        f"every subscriber received them in log order: {verdict(in_order)}"
        + ("" if in_order else f" ({[d.out_of_order for d in deliveries]} out of order,")
        + ("" if in_order else f" e.g. {[e for d in deliveries for e in d.examples][:3]})")
    )
    for setting, kind in (("each", "called per event"), ("batch", "batch=True")):
        crowded = median(rates[setting])
        slowdown = (alone - crowded) / alone * 100
        print(
            f"{args.subscribers} subscribers {kind}: median {alone:.0f} vs {crowded:.0f} tasks/s:"
            f" slowdown {slowdown:.1f}%"
            f" (target <= {TARGET_SLOWDOWN:.0f}%: {verdict(slowdown <= TARGET_SLOWDOWN)})"
        )
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
