#!/usr/bin/env python3
"""The soak command: `/usr/bin/python3 bench/soak.py --help`. The code, and its description, are in
tests/support/shield_soak.py, which the tests import too (tests/support/ holds what tests and bench/ share)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "support"))

import shield_soak  # noqa: E402

if __name__ == "__main__":
    sys.exit(shield_soak.main())
