#!/usr/bin/env python3
"""The chaos command: `/usr/bin/python3 bench/chaos.py --help`. The code, and its description, are in
tests/support/shield_chaos.py, which the tests import too (tests/support/ holds what tests and bench/ share)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "support"))

import shield_chaos  # noqa: E402

if __name__ == "__main__":
    sys.exit(shield_chaos.main())
