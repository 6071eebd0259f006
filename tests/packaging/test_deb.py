"""`cmake --install` and the .deb from CPack: the .deb is installed into this system with dpkg,
Debian's redis-server loads the module through a configuration file, and dpkg removes it again.
Built in a temporary build folder from this checkout (module only), so build/ is left alone."""

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import redis
from shield_packaging import require_root_and, run
from shield_servers import HOST, REPO, free_port, require, wait_until

PACKAGE = "redis-shield"
INSTALLED = Path("/usr/lib/redis/modules/libredis_shield.so")
REDIS_SERVER = Path("/usr/bin/redis-server")  # Debian's


def project_version():
    for line in (REPO / "CMakeLists.txt").read_text().splitlines():
        if line.startswith("project(") and " VERSION " in line:
            return line.split(" VERSION ")[1].split()[0]
    raise AssertionError("no VERSION in project()")


def package_installed():
    result = run(["dpkg-query", "-W", "-f=${Status}", PACKAGE], check=False)
    return result.returncode == 0 and "installed" in result.stdout.split()


@pytest.fixture(scope="module")
def build_dir():
    """A build folder of the module alone (no tests), configured with the defaults a user gets."""
    require_root_and("cmake", "cpack", "dpkg", "dpkg-deb")
    folder = Path(tempfile.mkdtemp(prefix="shield-deb-"))
    try:
        run(["cmake", "-S", REPO, "-B", folder / "build", "-DSHIELD_BUILD_TESTS=OFF"], timeout=300)
        run(["cmake", "--build", folder / "build", "--target", "redis_shield", "-j2"], timeout=600)
        yield folder / "build"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def deb(build_dir):
    run(["cpack", "-G", "DEB"], cwd=build_dir, timeout=300)
    debs = sorted(build_dir.glob(f"{PACKAGE}_*.deb"))
    assert len(debs) == 1, debs
    return debs[0]


@pytest.fixture(scope="module")
def installed(deb):
    """The .deb installed with dpkg -i; removed again at the end whatever happened."""
    require(REDIS_SERVER.exists(), "Debian's redis-server is not installed")
    if package_installed():
        pytest.fail(f"{PACKAGE} is already installed on this system: the test would replace it "
                    f"(dpkg -r {PACKAGE} first)")
    if INSTALLED.exists():
        pytest.fail(f"{INSTALLED} exists and belongs to no {PACKAGE} package: not overwriting it")
    try:
        run(["dpkg", "-i", deb], timeout=120)
        yield deb
    finally:
        if package_installed():
            run(["dpkg", "-r", PACKAGE], check=False, timeout=120)


def test_cmake_install_puts_the_module_in_usr_lib_redis_modules(build_dir):
    stage = build_dir / "stage"
    run(["cmake", "--install", build_dir], env={**os.environ, "DESTDIR": str(stage)}, timeout=120)
    installed = sorted(str(p.relative_to(stage)) for p in stage.rglob("*") if p.is_file())
    assert installed == ["usr/lib/redis/modules/libredis_shield.so"]
    assert os.access(stage / installed[0], os.X_OK), "Redis 7 refuses to load a module it cannot execute"


def test_cmake_install_takes_another_prefix_or_module_folder(build_dir):
    elsewhere = build_dir / "elsewhere"
    run(["cmake", "--install", build_dir, "--prefix", elsewhere], timeout=120)
    assert (elsewhere / "lib/redis/modules/libredis_shield.so").is_file()
    cache = (build_dir / "CMakeCache.txt").read_text()
    assert "SHIELD_MODULE_INSTALL_DIR:STRING=lib/redis/modules" in cache


def test_the_deb_is_named_and_versioned_from_the_project_and_needs_only_libc(deb):
    fields = {name: run(["dpkg-deb", "-f", deb, name]).stdout.strip()
              for name in ("Package", "Version", "Architecture", "Maintainer", "Description", "Depends")}
    assert fields["Package"] == PACKAGE
    assert fields["Version"] == project_version()
    assert fields["Architecture"] == run(["dpkg", "--print-architecture"]).stdout.strip()
    assert fields["Maintainer"]
    assert "rate limiter" in fields["Description"]
    depends = [d.strip().split()[0] for d in fields["Depends"].split(",") if d.strip()]
    assert depends == ["libc6"], fields["Depends"]


def test_the_deb_holds_only_the_module_which_needs_libc_alone_from_glibc_2_14_on(deb, tmp_path):
    listing = run(["dpkg-deb", "-c", deb]).stdout
    files = [line.split()[-1] for line in listing.splitlines() if not line.startswith("d")]
    assert files == ["./usr/lib/redis/modules/libredis_shield.so"]
    run(["dpkg-deb", "-x", deb, tmp_path])
    dynamic = run(["readelf", "-d", tmp_path / "usr/lib/redis/modules/libredis_shield.so"]).stdout
    needed = sorted(line.split("[")[1].rstrip("]") for line in dynamic.splitlines() if "(NEEDED)" in line)
    # No libstdc++, and not glibc's loader either: that comes with libstdc++'s exception code
    # (anything that can throw, such as string_view::substr) and stops musl from loading it.
    assert needed == ["libc.so.6"], f"{needed}: see docs/deploy.md, which systems can load it"
    symbols = run(["objdump", "-T", tmp_path / "usr/lib/redis/modules/libredis_shield.so"]).stdout
    versions = {tuple(int(n) for n in v.split(".")) for v in re.findall(r"\(GLIBC_([0-9.]+)\)", symbols)}
    assert versions and max(versions) <= (2, 14), sorted(versions)  # loads on any glibc since 2.14 (2011)


def test_dpkg_installs_the_module_into_usr_lib_redis_modules(installed):
    assert INSTALLED.is_file()
    assert INSTALLED.stat().st_mode & 0o111 == 0o111, oct(INSTALLED.stat().st_mode)
    assert package_installed()
    owned = run(["dpkg", "-L", PACKAGE]).stdout.split()
    assert str(INSTALLED) in owned


def test_debians_redis_server_loads_the_installed_module_from_a_config_file(installed, tmp_path):
    port = free_port(with_bus=False)
    assert port < 32768
    conf = tmp_path / "redis.conf"
    conf.write_text(f"port {port}\nbind {HOST}\ndaemonize no\ndir {tmp_path}\nsave \"\"\nappendonly no\n"
                    f"logfile {tmp_path / 'redis.log'}\nloadmodule {INSTALLED}\n")
    process = subprocess.Popen([str(REDIS_SERVER), str(conf)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.STDOUT)
    try:
        def ready():
            if process.poll() is not None:
                log = (tmp_path / "redis.log").read_text() if (tmp_path / "redis.log").exists() else ""
                raise AssertionError(f"redis-server exited {process.returncode}: {log[-2000:]}")
            with redis.Redis(host=HOST, port=port, socket_timeout=1) as c:
                return c.ping()

        wait_until(ready, timeout=15, what=f"redis-server on port {port}")
        with redis.Redis(host=HOST, port=port, decode_responses=True, socket_timeout=5) as c:
            modules = c.execute_command("MODULE", "LIST")
            names = [dict(zip(m[::2], m[1::2]))["name"] for m in modules]
            assert [n.lower() for n in names] == ["shield"], modules
            paths = [dict(zip(m[::2], m[1::2])).get("path") for m in modules]
            assert paths in ([str(INSTALLED)], [None]), paths  # Redis 7.0 lists the path, older ones do not
            assert c.execute_command("SHIELD.absorb", "user123", 100, 60, 5) == 95
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def test_dpkg_remove_takes_the_module_away(installed):
    run(["dpkg", "-r", PACKAGE], timeout=120)
    assert not package_installed()
    assert not INSTALLED.exists()
