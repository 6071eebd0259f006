#!/usr/bin/env python3
"""Instructions the server executes per call, counted by callgrind (tests/support/shield_instructions.py
says how). Prints the figures of the workloads given (`--only`, default: all), or:

`--check` is the CI gate on these figures (scripts/test.sh): it measures every Shield command's
workload and fails when one costs more than 3% above bench/results/instructions-baseline.json.
`--write-baseline` rewrites that file; a change that is meant to cost more updates it in the same
commit and says why in the commit message.

The floor workloads (floor write, floor read, floor read ro, floor call read) need the floor
module, built only with -DSHIELD_BUILD_BENCH=ON; the gate's workloads do not.
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "support"))

from shield_instructions import (BASELINE, CALLS, DEFAULT_MODULE, DISPATCHERS, MEASURED,  # noqa: E402
                                 THRESHOLD_PERCENT, check, default_server, gated_workloads, measure,
                                 write_baseline)
from shield_workloads import WORKLOADS  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--module", default=str(DEFAULT_MODULE), help="default: build/libredis_shield.so")
    parser.add_argument("--server", default=None,
                        help="server binary (default: redis-server on PATH; with --check and --write-baseline, "
                             ".deps/servers/redis7's if installed)")
    parser.add_argument("--kind", choices=sorted(DISPATCHERS), default="redis")
    parser.add_argument("--floor", default=None, help="the floor module (default: next to --module, as bench.py)")
    parser.add_argument("--only", default=None, help="comma-separated workloads (default: all of MEASURED; with "
                                                     "--check and --write-baseline, every Shield command's)")
    parser.add_argument("--calls", type=int, default=CALLS)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", nargs="?", const=str(BASELINE), metavar="BASELINE",
                      help=f"the gate: fail when a workload costs more than {THRESHOLD_PERCENT}%% above BASELINE "
                           "(default: bench/results/instructions-baseline.json)")
    mode.add_argument("--write-baseline", nargs="?", const=str(BASELINE), metavar="BASELINE",
                      help="measure and write BASELINE (default: bench/results/instructions-baseline.json)")
    args = parser.parse_args()
    module = str(Path(args.module).resolve())
    if args.check or args.write_baseline:
        names = [n.strip() for n in args.only.split(",")] if args.only else gated_workloads()
        unknown = [n for n in names if n not in gated_workloads()]
        if unknown:
            parser.error(f"not gated: {unknown}; gated: {', '.join(gated_workloads())}")
        server = args.server or default_server()
        if args.check:
            sys.exit(check(args.check, module, server, names))
        write_baseline(args.write_baseline, module, server, names)
        sys.exit(0)
    names = [n.strip() for n in args.only.split(",")] if args.only else MEASURED
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workloads {unknown}; measured by default: {', '.join(MEASURED)}")
    try:
        counts = measure(module, names, calls=args.calls, server_binary=args.server, kind=args.kind,
                         floor=args.floor)
    except FileNotFoundError as missing:
        parser.error(str(missing))
    print(json.dumps(counts, indent=2))


if __name__ == "__main__":
    main()
