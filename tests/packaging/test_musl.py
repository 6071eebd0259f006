"""The module in a musl redis-server, as in Alpine images (`redis:7-alpine`).

Redis 7.0 from the upstream tarball Debian's source package carries, built with musl-gcc
(`MALLOC=libc`, dynamically linked: a static binary cannot load modules), cached under
.deps/musl/. musl's loader takes the module's `libc.so.6` for itself and ignores glibc's symbol
versions, so the module loads when it needs nothing else: no other library, and only libc symbols
musl has (no `__libc_single_threaded`, `arc4random`, `_dl_find_object`, which a static libstdc++
brings in once anything in the module can throw)."""

import shutil
import tempfile
import time
from pathlib import Path

import pytest
from shield_packaging import TIMINGS, require_root_and, run
from shield_servers import MODULE, REPO, Server

CACHE = REPO / ".deps" / "musl"
REDIS_SOURCE = "redis/bookworm"  # Redis 7.0.15, the version Debian bookworm ships
MUSL_LOADER = "/lib/ld-musl-x86_64.so.1"


def build_musl_redis():
    """.deps/musl/redis-<version>/redis-server, built once (about a minute on two cores)."""
    existing = sorted(CACHE.glob("redis-*/redis-server"))
    if existing:
        return existing[-1]
    work = Path(tempfile.mkdtemp(prefix="shield-musl-"))
    try:
        run(["apt-get", "source", "--tar-only", REDIS_SOURCE], cwd=work, timeout=300)
        tarball = next(work.glob("redis_*.orig.tar.*"))
        version = tarball.name.split("_")[1].split(".orig")[0]
        run(["tar", "-xf", tarball, "-C", work], timeout=120)
        source = next(p for p in work.iterdir() if p.is_dir() and p.name.startswith("redis"))
        run(["make", "-C", source, "-j2", "CC=musl-gcc", "MALLOC=libc", "BUILD_TLS=no", "USE_SYSTEMD=no",
             "redis-server"], timeout=900)
        dest = CACHE / f"redis-{version}"
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / "src" / "redis-server", dest / "redis-server.tmp")
        (dest / "redis-server.tmp").rename(dest / "redis-server")
        return dest / "redis-server"
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def musl_redis():
    require_root_and("musl-gcc", "make")
    start = time.monotonic()
    binary = build_musl_redis()
    TIMINGS["musl redis-server (built or cached)"] = f"{time.monotonic() - start:.1f}s"
    return binary


def test_the_musl_server_is_a_dynamically_linked_musl_binary(musl_redis):
    headers = run(["readelf", "-l", musl_redis]).stdout
    assert f"[Requesting program interpreter: {MUSL_LOADER}]" in headers


def test_the_module_needs_no_library_but_libc(musl_redis):
    dynamic = run(["readelf", "-d", MODULE]).stdout
    needed = [line.split("[")[1].rstrip("]") for line in dynamic.splitlines() if "(NEEDED)" in line]
    assert needed == ["libc.so.6"], f"{needed}: musl has no file of that name, Alpine cannot load the module"


def test_the_module_loads_into_a_musl_redis_server_and_absorbs(musl_redis):
    server = Server(str(musl_redis))
    try:
        server.start()
        with server.client() as c:
            assert c.info("server")["redis_version"].startswith("7.0.")
            modules = c.execute_command("MODULE", "LIST")
            assert [dict(zip(m[::2], m[1::2]))["name"].lower() for m in modules] == ["shield"]
            assert c.execute_command("SHIELD.absorb", "user123", 100, 60, 5) == 95
            assert c.execute_command("SHIELD.absorb", "user123", 100, 60, 96) == -1
            assert c.execute_command("SHIELD.absorb_multi", "{u}:a", "10:20", 60, 5, "{u}:b", 5, 60, 1) == [15, 4]
    finally:
        server.cleanup()
