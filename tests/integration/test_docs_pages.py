"""README.md and the docs pages it links to, as a new user reads them: every link leads somewhere,
and every fenced block is run as pasted (or is one this module knows the reason not to run).

- redis-cli transcripts (``` blocks of `127.0.0.1:6379> <command>` lines, each followed by its
  reply as redis-cli prints it) run on a fresh server with Shield, each command through
  `redis-cli --no-raw`, and must print what the block shows (but for the time a calendar quota
  has left: clock_masked). A transcript that loads the module
  (`MODULE LOAD /path/to/libredis_shield.so`) runs on a server without it, with
  `enable-module-command yes`; `/path/to/libredis_shield.so` becomes the module under test.
- ```conf blocks (a `loadmodule` line) start a server from a configuration file holding them.
- ```bash blocks: each line is a command of KNOWN_COMMANDS, run as pasted from the repository root
  with the test's ports and folders set in the environment (SHIELD_PORT, SHIELD_RUN_DIR, PORT,
  REDIS_URL, SHIELD_BUILD_DIR), or with 6379 and 8080 replaced by the test's ports; or one of
  NOT_RUN, with the reason.
Blocks of docs/commands.md, docs/cluster.md, docs/deploy.md and docs/production.md are run by their
own tests (tests/cluster/test_doc_snippets.py and the tests each page names).
"""

import os
import re
import shlex
import signal
import subprocess
import sys
import urllib.request

import pytest
from shield_servers import (HOST, MODULE, REPO, cli_binary, free_port, require, server_environment,
                            wait_until)

README = REPO / "README.md"
PAGES = [README] + [REPO / "docs" / name for name in (
    "guide.md", "install.md", "design.md", "differences.md", "testing.md", "benchmarks.md")]
ALL_DOCS = [README] + sorted((REPO / "docs").glob("*.md"))
PROMPT = "127.0.0.1:6379> "
DOC_MODULE_PATH = "/path/to/libredis_shield.so"


def fenced_blocks(path):
    """(line number, language, text) of every fenced block."""
    lines = path.read_text().splitlines()
    blocks, i = [], 0
    while i < len(lines):
        fence = re.match(r"\s*```\s*([\w+-]*)", lines[i])
        if fence:
            end = i + 1
            while end < len(lines) and not lines[end].lstrip().startswith("```"):
                end += 1
            blocks.append((i + 2, fence.group(1).lower(), "\n".join(lines[i + 1:end]) + "\n"))
            i = end
        i += 1
    return blocks


def block_id(path, line):
    return f"{path.relative_to(REPO)}:{line}"


# --- links --------------------------------------------------------------------------------------


def slug(heading):
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path):
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    return {slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*#*$", text, re.M)}


@pytest.mark.parametrize("page", ALL_DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_leads_to_a_file_and_heading_that_exist(page):
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue  # a web address
        file_part, _, anchor = target.partition("#")
        destination = (page.parent / file_part).resolve() if file_part else page
        if not destination.exists():
            broken.append(target)
        elif anchor and destination.suffix == ".md" and anchor not in anchors(destination):
            broken.append(target)
    assert not broken, f"{page.name}: {broken}"


def test_the_benchmarks_page_quotes_the_latest_results_file_as_it_is():
    page = (REPO / "docs" / "benchmarks.md").read_text()
    results = (REPO / "bench" / "results" / "results.md").read_text().strip()
    assert results in page
    algorithms = (REPO / "bench" / "results" / "algorithms.md").read_text()
    assert "bench/" in algorithms  # it names the command that regenerates it
    assert "`bash bench/run.sh`" in page


def test_the_readme_keeps_the_two_fresh_machine_commands_and_a_table_of_contents():
    bash_lines = [ln.strip() for _, lang, text in fenced_blocks(README) if lang == "bash"
                  for ln in text.splitlines() if ln.strip()]
    assert "bash scripts/run.sh" in bash_lines and "bash scripts/test.sh" in bash_lines
    text = README.read_text()
    contents = re.findall(r"^- \[[^]]+\]\(#([^)]+)\)$", text, re.M)
    assert len(contents) >= 5 and set(contents) <= anchors(README)
    assert "bash scripts/test.sh --quick" in bash_lines  # the quick tier, next to the full command


# --- transcripts ---------------------------------------------------------------------------------


def transcripts():
    found = []
    for page in PAGES:
        for line, lang, text in fenced_blocks(page):
            if lang in ("", "text") and text.startswith(PROMPT):
                found.append(pytest.param(text, id=block_id(page, line)))
    return found


def parse_transcript(text):
    """[(command, [reply lines])] of a transcript block."""
    steps = []
    for line in text.splitlines():
        if line.startswith(PROMPT):
            steps.append((line[len(PROMPT):], []))
        else:
            steps[-1][1].append(line)
    return steps


def clock_masked(command, lines):
    """Reply lines with what depends on the wall clock masked: in a reply to a command with a
    calendar quota (SHIELD.quota, a QUOTA policy), the integer after "reset_after_ms" is the time
    to the end of the hour, day or month. Only that it is an integer is compared."""
    if not re.search(r"\bquota\b", command, re.I):
        return lines
    masked = []
    for i, line in enumerate(lines):
        if i and lines[i - 1].rstrip('"').endswith("reset_after_ms"):
            line = re.sub(r"\(integer\) \d+$", "(integer) <clock>", line)
        masked.append(line)
    return masked


@pytest.mark.parametrize("text", transcripts())
def test_transcript_prints_what_the_docs_show(text, make_server):
    loads_module = "MODULE LOAD" in text
    server = (make_server(module=None, extra_args=["--enable-module-command", "yes"]) if loads_module
              else make_server())
    for command, expected in parse_transcript(text):
        args = shlex.split(command.replace(DOC_MODULE_PATH, MODULE))
        done = subprocess.run([cli_binary(), "-h", HOST, "-p", str(server.port), "--no-raw", *args],
                              capture_output=True, text=True, timeout=30)
        assert clock_masked(command, done.stdout.rstrip("\n").splitlines()) == \
            clock_masked(command, expected), (command, done.stdout, done.stderr)


def test_the_docs_hold_transcripts_and_the_readme_one_of_them():
    assert any("README.md" in p.id for p in transcripts())


# --- conf blocks ---------------------------------------------------------------------------------


def conf_blocks():
    return [pytest.param(text, id=block_id(page, line))
            for page in PAGES for line, lang, text in fenced_blocks(page) if lang == "conf"]


@pytest.mark.parametrize("text", conf_blocks())
def test_configuration_block_loads_shield(text, server_binary, tmp_path):
    config = tmp_path / "redis.conf"
    config.write_text(text.replace(DOC_MODULE_PATH, MODULE))
    # A server started from the file, as `redis-server /etc/redis/redis.conf` would be.
    port = free_port()
    process = subprocess.Popen([server_binary, str(config), "--port", str(port), "--bind", HOST,
                                "--save", "", "--dir", str(tmp_path)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=server_environment())
    try:
        def modules():
            done = subprocess.run([cli_binary(), "-h", HOST, "-p", str(port), "MODULE", "LIST"],
                                  capture_output=True, text=True, timeout=10)
            return done.returncode == 0 and done.stdout
        assert "SHIELD" in wait_until(modules, what="the server started from the file")
    finally:
        process.kill()
        process.wait(timeout=10)


# --- bash blocks ---------------------------------------------------------------------------------

# Lines not run here, and why.
NOT_RUN = {
    "bash scripts/test.sh": "the whole suite, which includes this test",
    "bash scripts/test.sh --quick": "the quick tier, which includes this test",
}


def bash_lines():
    lines = []
    for page in PAGES:
        for line, lang, text in fenced_blocks(page):
            if lang in ("bash", "sh", "shell"):
                lines += [(block_id(page, line), ln.strip()) for ln in text.splitlines()
                          if ln.strip() and not ln.strip().startswith("#")]
    return lines


KNOWN_COMMANDS = {
    "bash scripts/run.sh", "bash scripts/run.sh --stop", "redis-cli -p 6379",
    "python3 examples/http_ratelimit.py &", "curl -i http://127.0.0.1:8080/",
    "bash scripts/install-deps.sh", "bash scripts/build.sh -DSHIELD_BUILD_TESTS=OFF",
    "SHIELD_SERVERS=redis7 /usr/bin/python3 -m pytest -q tests/integration/test_http_example.py",
}


def test_every_bash_line_of_the_pages_is_run_here_or_has_a_reason_not_to_be():
    unknown = [(where, line) for where, line in bash_lines()
               if line not in KNOWN_COMMANDS and line not in NOT_RUN]
    assert not unknown, unknown


def test_every_known_command_is_in_the_pages():
    # `bash scripts/install-deps.sh` runs in test_scripts.py, with apt-get recorded, not run;
    # `bash scripts/run.sh --cluster` and its ports there too.
    assert KNOWN_COMMANDS <= {line for _, line in bash_lines()}


def shell(line, env, timeout=120):
    return subprocess.run(["bash", "-c", line], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_the_readme_run_connect_and_stop_lines_work_as_pasted(tmp_path, server_binary):
    if os.environ.get("SHIELD_SERVER_PRELOAD"):
        pytest.skip("run.sh cannot load a sanitizer build of the module (the ASan pass)")
    port = free_port()
    env = dict(os.environ, SHIELD_PORT=str(port), SHIELD_RUN_DIR=str(tmp_path / "standalone"),
               SHIELD_CLUSTER_DIR=str(tmp_path / "cluster"), SHIELD_SKIP_DEPS="1", SHIELD_MODULE=MODULE,
               SHIELD_REDIS_SERVER=server_binary, SHIELD_REDIS_CLI=cli_binary())
    env.pop("SHIELD_CLUSTER_BASE_PORT", None)
    env.pop("SHIELD_CLUSTER_PORTS", None)
    readme = [line for where, line in bash_lines() if where.startswith("README.md")]
    pidfile = tmp_path / "standalone" / "redis.pid"
    try:
        start = shell(readme[readme.index("bash scripts/run.sh")], env)
        assert start.returncode == 0, start.stderr
        connect = subprocess.run(
            ["bash", "-c", readme[readme.index("redis-cli -p 6379")].replace("6379", str(port))],
            input="SHIELD.absorb user123 30 60 13\n", capture_output=True, text=True, timeout=30)
        assert connect.stdout == "17\n", connect.stderr
        stop = shell(readme[readme.index("bash scripts/run.sh --stop")], env)
        assert stop.returncode == 0, stop.stderr
        assert "stopped redis-server" in stop.stdout
    finally:
        if pidfile.exists():
            try:
                os.kill(int(pidfile.read_text()), signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_the_readme_http_example_lines_work_as_pasted(make_server):
    server = make_server()
    readme = [line for where, line in bash_lines() if where.startswith("README.md")]
    example = next(line for line in readme if line.startswith("python3 examples/http_ratelimit.py"))
    curl = next(line for line in readme if line.startswith("curl "))
    http_port = free_port()
    # python3 as on a fresh Debian machine: /usr/bin/python3, which has Debian's python3-redis
    # (a developer's PATH may put another python3 first).
    env = dict(os.environ, PORT=str(http_port), REDIS_URL=f"redis://{HOST}:{server.port}",
               PATH=f"/usr/bin:{os.environ['PATH']}")
    process = subprocess.Popen(["bash", "-c", example.rstrip("&").strip()], cwd=REPO, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    try:
        def answers():
            with urllib.request.urlopen(f"http://{HOST}:{http_port}/healthz-probe", timeout=2):
                return True
        wait_until(answers, what="the example to answer")
        done = subprocess.run(["bash", "-c", curl.replace("8080", str(http_port))], capture_output=True,
                              text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        head = done.stdout.splitlines()
        assert head[0].split()[1] == "200"
        assert 'RateLimit-Policy: "ip";q=10;w=2, "day";q=1000;w=86400' in head
        # The probe took one request of this address's day; curl the second. (The bucket refills
        # 5 a second meanwhile, so its r= depends on the time between the two.)
        assert any(re.fullmatch(r'RateLimit: "ip";r=[89];t=[12], "day";r=998;t=\d+', line)
                   for line in head), head
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def once(server_kind):
    """The tests below do not depend on the server: one run of the matrix is enough."""
    if server_kind != "redis7":
        pytest.skip("runs once, with redis7")


def test_the_build_by_hand_lines_build_the_module(tmp_path, server_kind):
    once(server_kind)
    line = next(line for _, line in bash_lines() if line.startswith("bash scripts/build.sh"))
    env = dict(os.environ, SHIELD_BUILD_DIR=str(tmp_path / "build"))
    done = shell(line, env, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert (tmp_path / "build" / "libredis_shield.so").exists()


def test_the_testing_page_command_for_one_file_runs_it(server_kind):
    once(server_kind)
    line = next(line for _, line in bash_lines() if "-m pytest" in line)
    require(sys.executable == "/usr/bin/python3" or os.path.exists("/usr/bin/python3"), "no /usr/bin/python3")
    env = dict(os.environ, PYTEST_ADDOPTS="-p no:cacheprovider", SHIELD_MODULE=MODULE)
    env.pop("SHIELD_SERVERS", None)
    done = shell(line, env, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:]
    assert re.search(r"\d+ passed", done.stdout)
