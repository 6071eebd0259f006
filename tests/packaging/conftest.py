"""Fixtures of the packaging tests: podman's settings here, and the Shield image built once per run."""

import os
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))

from shield_packaging import (SHIELD_IMAGE, TIMINGS, build_shield_image, ensure_base_image,  # noqa: E402
                              podman_env, require_root_and)


def pytest_terminal_summary(terminalreporter):
    if TIMINGS:
        terminalreporter.write_sep("-", "packaging timings")
        for name, value in TIMINGS.items():
            terminalreporter.write_line(f"{name}: {value}")


@pytest.fixture(scope="session")
def podman():
    """The environment podman runs with here (CONTAINERS_CONF: runc, cgroupfs, ulimits)."""
    require_root_and("podman", "runc", "debootstrap")
    return podman_env()


@pytest.fixture(scope="session")
def shield_image(podman):
    """redis-shield:local, built from docker/Dockerfile on a debian:bookworm made with debootstrap."""
    start = time.monotonic()
    how = ensure_base_image(podman)
    TIMINGS[f"base image debian:bookworm ({how})"] = f"{time.monotonic() - start:.1f}s"
    start = time.monotonic()
    build_shield_image(podman)
    TIMINGS["podman build docker/Dockerfile"] = f"{time.monotonic() - start:.1f}s"
    return SHIELD_IMAGE
