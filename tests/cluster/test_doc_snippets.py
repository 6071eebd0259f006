"""Every client snippet in docs/cluster.md and README.md runs, as pasted, against a real cluster.

Project rule: every client snippet in the docs is run by a test as pasted. This module reads the
fenced blocks of the two files and runs each client snippet against a 3-primary, 3-replica cluster
with Shield loaded:

- ```python blocks with /usr/bin/python3, in a subprocess whose working folder is a temp folder;
- ```js blocks with `node`, from a temporary .js file in tests/cluster (so that require() finds
  ioredis and redis in tests/cluster/node_modules), deleted afterwards;
- ```bash blocks made only of `redis-cli [-c] -p <port> ...` one-liners, with bash.

Not run: ```go blocks (there is no Go toolchain on the test machine), and ```bash blocks that do
more than call redis-cli on a node (deployment scripts, Docker, the test suite, loops).

The snippets name the ports of scripts/cluster.sh (7001-7003 primaries in slot order, 7004-7006
their replicas). The only change made to a snippet is to replace those numbers with the ports of
this test's cluster: 7001-7003 become its primaries in slot order, 7004-7006 a replica of each.
Before each snippet every primary is flushed (and the flush waited for on the replicas), so a
snippet that uses a fixed key such as user:123 starts from empty buckets.

A snippet must exit with 0. When its last printing line carries the expected output as a comment,
`print(x)  # <expected>` (Python) or `console.log(x);  // <expected>` (JS), and the comment starts
with a literal (`# [9, 999]; -1 marks ...` -> [9, 999]), the last line printed must equal it; a
trailing `...` in a dict or list literal (`# {'allowed': 1, 'remaining': 99, ...}`) means that
the printed value holds at least the entries shown. A comment that starts with no literal is prose
and only the exit code counts. For redis-cli, which exits with 0 even on an error reply, the output
must not be an error reply.
"""

import ast
import os
import re
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest
from shield_servers import REPO, require, wait_until

HERE = Path(__file__).resolve().parent
NODE_CLIENTS = HERE / "node_modules"
DOCUMENTS = [REPO / "docs" / "cluster.md", REPO / "README.md"]
PYTHON = "/usr/bin/python3"
TIMEOUT = 60  # seconds per snippet; a Node snippet that never closes its client hits this

# The ports the snippets name (scripts/cluster.sh), not part of a longer number.
DOC_PORT = re.compile(r"(?<!\d)700[1-6](?!\d)")
REDIS_CLI_ONE_LINER = re.compile(r"redis-cli( -c)? -p 700[1-6] \S")

RUN = {"python": "python", "py": "python", "js": "js", "javascript": "js"}
SHELL = {"bash", "sh", "shell"}
# Client snippets not run here, and why.
NOT_RUN = {"go": "no Go toolchain on the test machine"}
# Snippets of Shield's own client libraries are run by their docs tests (the README's Python one by
# tests/clients/python/test_docs.py, on the server it names), not here on a cluster.
CLIENT_LIBRARY = re.compile(r"^(import|from) redis_shield\b", re.M)
# Fenced blocks that hold no client code (command transcripts, INFO output, shell).
NOT_CLIENT_CODE = {"", "text", "console", "conf"} | SHELL

REDIS_ERROR_REPLY = re.compile(
    r"^(\(error\) )?(ERR|MOVED|ASK|CROSSSLOT|CLUSTERDOWN|TRYAGAIN|WRONGTYPE|READONLY|OOM|NOPERM"
    r"|LOADING|BUSY|NOSCRIPT|EXECABORT)\b")


class Snippet:
    def __init__(self, document, line, heading, lang, text):
        self.document = document
        self.line = line
        self.heading = heading
        self.lang = lang
        self.text = text

    @property
    def kind(self):
        """How it runs: python, js, redis-cli, or None when it is not run."""
        if CLIENT_LIBRARY.search(self.text):
            return None
        if self.lang in RUN:
            return RUN[self.lang]
        if self.lang in SHELL:
            lines = [ln.strip() for ln in self.text.splitlines()
                     if ln.strip() and not ln.strip().startswith("#")]
            if lines and all(REDIS_CLI_ONE_LINER.match(ln) for ln in lines):
                return "redis-cli"
        return None

    @property
    def client(self):
        if self.kind == "python":
            return "redis-py" if re.search(r"^(import|from) redis\b", self.text, re.M) else ""
        if self.kind == "js":
            if 'require("ioredis")' in self.text:
                return "ioredis"
            if 'require("redis")' in self.text:
                return "node-redis"
            return ""
        return self.kind or ""

    def label(self):
        lang = {"python": "python", "js": "js", "redis-cli": "bash"}.get(self.kind, self.lang)
        return f"{self.document.name}: {self.heading}: {lang} {self.client}".strip()


def fenced_blocks(document):
    """Every fenced block of a Markdown file, with the heading it is under and its line number."""
    lines = document.read_text().splitlines()
    heading = "(top)"
    blocks = []
    i = 0
    while i < len(lines):
        fence = re.match(r"\s*```\s*([\w+-]*)", lines[i])
        if fence:
            start = i + 1
            end = start
            while end < len(lines) and not lines[end].lstrip().startswith("```"):
                end += 1
            text = "\n".join(lines[start:end]) + "\n"
            blocks.append(Snippet(document, start, heading, fence.group(1).lower(), text))
            i = end + 1
            continue
        title = re.match(r"#{1,6}\s+(.+?)\s*#*$", lines[i])
        if title:
            heading = title.group(1)
        i += 1
    return blocks


def runnable_snippets():
    snippets = [s for doc in DOCUMENTS for s in fenced_blocks(doc) if s.kind]
    seen = {}
    params = []
    for snippet in snippets:
        label = snippet.label()
        seen[label] = seen.get(label, 0) + 1
        if seen[label] > 1:
            label = f"{label} #{seen[label]}"
        params.append(pytest.param(snippet, id=label))
    return params


SNIPPETS = runnable_snippets()


# ---- expected output ------------------------------------------------------------------------

PRINT_WITH_COMMENT = {
    "python": re.compile(r"^\s*print\(.*\)\s*#\s*(?P<comment>.+)$"),
    "js": re.compile(r"^\s*console\.log\(.*\);?\s*//\s*(?P<comment>.+)$"),
}
TRAILING_ELLIPSIS = re.compile(r",\s*\.\.\.\s*([}\]])$")


def literal_prefix(comment):
    """(value, partial) for the literal a comment starts with, or None when it starts with prose.

    The literal ends the comment or is followed by `;` or `,` (`95, or -1 if denied` -> 95);
    a trailing `, ...` inside a dict or list makes it partial."""
    comment = comment.strip()
    ends = [len(comment)] + [m.start() for m in re.finditer(r"[;,]", comment)][::-1]
    for end in ends:
        head = comment[:end].strip()
        partial = bool(TRAILING_ELLIPSIS.search(head))
        if partial:
            head = TRAILING_ELLIPSIS.sub(r"\1", head)
        if not head or head.endswith(","):
            continue
        try:
            return ast.literal_eval(head), partial
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
    return None


def expected_output(snippet):
    pattern = PRINT_WITH_COMMENT.get(snippet.kind)
    if not pattern:
        return None
    printing = [m for m in map(pattern.match, snippet.text.splitlines()) if m]
    return literal_prefix(printing[-1]["comment"]) if printing else None


def printed_value(line):
    try:
        return ast.literal_eval(line)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return line


def assert_output_matches(expected, stdout, context):
    value, partial = expected
    lines = [ln for ln in stdout.splitlines() if ln.strip()]
    assert lines, f"printed nothing, expected {value!r}\n{context}"
    got = printed_value(lines[-1].strip())
    if partial and isinstance(value, dict) and isinstance(got, dict):
        assert {k: got.get(k) for k in value} == value, f"printed {got!r}\n{context}"
    elif partial and isinstance(value, list) and isinstance(got, list):
        assert got[:len(value)] == value, f"printed {got!r}\n{context}"
    else:
        assert got == value, f"printed {lines[-1]!r}, the comment says {value!r}\n{context}"


# ---- the cluster ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster(make_cluster):
    return make_cluster(primaries=3, replicas=1, node_timeout=5000)


@pytest.fixture(scope="module")
def doc_ports(cluster):
    """7001-7003: the primaries in slot order (as scripts/cluster.sh); 7004-7006: their replicas."""
    primaries = cluster.primaries()
    replicas = [cluster.replica_of(p) for p in primaries]
    return {doc: node.port for doc, node in zip(range(7001, 7007), primaries + replicas)}


def every_node_lists_a_replica_for_every_slot_range(cluster):
    # A node leaves a replica out of CLUSTER SLOTS (which clients read to find replicas) until it
    # has heard that the replica received replication data; a long-running cluster is past that.
    for node in cluster.nodes:
        with node.client() as c:
            if any(len(entry) < 4 for entry in c.execute_command("CLUSTER", "SLOTS")):
                return False
    return True


@pytest.fixture
def empty_cluster(cluster):
    """Flushes every primary, waits until its replica has the flush too, and until every node
    lists the replicas in CLUSTER SLOTS (the inspect snippet asks the client for one)."""
    for primary in cluster.primaries():
        with primary.client() as c:
            c.flushall()
            assert c.execute_command("WAIT", 1, 5000) == 1
    wait_until(lambda: every_node_lists_a_replica_for_every_slot_range(cluster),
               what="every node to list the replicas in CLUSTER SLOTS")
    return cluster


def with_test_ports(text, ports):
    return DOC_PORT.sub(lambda m: str(ports[int(m.group())]), text)


# ---- running ---------------------------------------------------------------------------------


def run(snippet, source):
    if snippet.kind == "python":
        require(os.path.exists(PYTHON), f"{PYTHON} missing")
        with tempfile.TemporaryDirectory(prefix="shield-doc-snippet-") as folder:
            path = Path(folder) / "snippet.py"
            path.write_text(source)
            return subprocess.run([PYTHON, str(path)], cwd=folder, capture_output=True, text=True,
                                  timeout=TIMEOUT)
    if snippet.kind == "js":
        require(shutil.which("node") is not None, "node missing")
        require(NODE_CLIENTS.is_dir(), "tests/cluster/node_modules missing (npm install in tests/cluster)")
        path = HERE / f".doc-snippet-{uuid.uuid4().hex[:12]}.js"
        path.write_text(source)
        try:
            return subprocess.run(["node", str(path)], cwd=HERE, capture_output=True, text=True,
                                  timeout=TIMEOUT)
        finally:
            path.unlink()
    if snippet.kind == "redis-cli":
        require(shutil.which("redis-cli") is not None, "redis-cli missing")
        with tempfile.TemporaryDirectory(prefix="shield-doc-snippet-") as folder:
            path = Path(folder) / "snippet.sh"
            path.write_text(source)
            return subprocess.run(["bash", "-e", str(path)], cwd=folder, capture_output=True,
                                  text=True, timeout=TIMEOUT)
    raise AssertionError(f"no runner for {snippet.kind}")


def test_the_docs_hold_client_snippets_and_each_is_run_or_deliberately_skipped():
    blocks = [s for doc in DOCUMENTS for s in fenced_blocks(doc)]
    kinds = {s.kind for s in blocks}
    assert {"python", "js", "redis-cli"} <= kinds, kinds
    # A snippet in a language this module neither runs nor knows to skip would go untested.
    unknown = [f"{s.document.name}:{s.line} ```{s.lang}" for s in blocks
               if not s.kind and s.lang not in NOT_RUN and s.lang not in NOT_CLIENT_CODE
               and not CLIENT_LIBRARY.search(s.text)]
    assert not unknown, f"snippets in a language this test does not run: {unknown}"


@pytest.mark.parametrize("snippet", SNIPPETS)
def test_doc_snippet_runs_as_pasted(snippet, doc_ports, empty_cluster):
    source = with_test_ports(snippet.text, doc_ports)
    try:
        done = run(snippet, source)
    except subprocess.TimeoutExpired as timeout:
        pytest.fail(f"{snippet.document.name}:{snippet.line} did not exit within {TIMEOUT} s "
                    f"(a client left open?)\nstdout: {timeout.stdout}\nstderr: {timeout.stderr}")
    context = (f"{snippet.document.name}:{snippet.line}, run as\n{source}\n"
               f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}")
    assert done.returncode == 0, context
    if snippet.kind == "redis-cli":
        errors = [ln for ln in done.stdout.splitlines() if REDIS_ERROR_REPLY.match(ln)]
        assert not errors, context
        if "SHIELD.stats CLUSTER" in snippet.text:
            # The reply's point: every node answered (none listed as timeout or unreachable).
            reply = done.stdout.splitlines()
            answered = reply[reply.index("nodes_answered") + 1]
            assert answered == reply[reply.index("nodes_total") + 1] == "6", context
    expected = expected_output(snippet)
    if expected is not None:
        assert_output_matches(expected, done.stdout, context)
