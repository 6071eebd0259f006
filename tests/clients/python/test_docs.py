"""Every snippet of docs/clients/python*.md, and the ```python blocks of README.md, runs, as pasted,
against a real server.

The only change made to a snippet: the ports it names, 6379 (Shield) and 8080 (the demo), become
this test's server's port and a free port. Then:

- ```python blocks run in a subprocess (Debian's python3, redis_shield on PYTHONPATH) as a module of
  their own. A `print(...)  # <text>` line says what it prints: the snippet's output lines must
  equal those comments, in order. A snippet that defines a web application (`app`: Flask,
  Starlette/FastAPI; or Django's `urlpatterns`) then answers GET / with 200 and the RateLimit headers.
- ```bash blocks run with bash in a temporary folder holding a copy of clients/python, python3
  being /usr/bin/python3; a ```text block right after one is its whole output.
- ```json and ```text blocks are not code.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap

import pytest

from pyclient_support import CLIENT, HERE, REPO, client_env
from shield_servers import free_port

DOCS = sorted((REPO / "docs" / "clients").glob("python*.md"))
README = REPO / "README.md"  # only its ```python blocks: its other blocks are test_docs_pages.py's
FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.M | re.S)
EXPECTED = re.compile(r"^\s*print\(.*\)\s+# (.+)$")

HARNESS = textwrap.dedent("""
    import importlib, sys
    from sfparse import ratelimit, ratelimit_policy
    sys.path.insert(0, sys.argv[1])
    snippet = importlib.import_module("doc_snippet")
    app = getattr(snippet, "app", None)

    def check(status, headers):
        assert status == 200, status
        ratelimit_policy(headers["RateLimit-Policy"])
        ratelimit(headers["RateLimit"])
        print("harness: GET / answered 200 with the RateLimit headers", file=sys.stderr)

    if app is not None and type(app).__module__.startswith("flask"):
        reply = app.test_client().get("/")
        check(reply.status_code, reply.headers)
    elif app is not None:
        from starlette.testclient import TestClient
        with TestClient(app) as client:
            reply = client.get("/")
            check(reply.status_code, reply.headers)
    elif hasattr(snippet, "urlpatterns"):
        from django.test import Client
        reply = Client().get("/")
        check(reply.status_code, reply)
""")


def snippets():
    found = []
    for document in [*DOCS, README]:
        text = document.read_text()
        blocks = [(m.group(1), m.group(2), text[:m.start()].count("\n") + 1) for m in FENCE.finditer(text)]
        for index, (lang, body, line) in enumerate(blocks):
            if document == README and lang != "python":
                continue
            if lang in ("python", "bash"):
                following = blocks[index + 1] if index + 1 < len(blocks) else None
                output = following[1] if following and following[0] == "text" and \
                    text.find(following[1]) - text.find(body) - len(body) < 20 else None
                found.append(pytest.param(lang, body, output, id=f"{document.name}:{line}"))
            else:
                assert lang in ("text", "json"), f"{document.name}:{line}: a ```{lang} block is not run"
    return found


def substitute(text, shield_port, demo_port):
    return re.sub(r"(?<!\d)8080(?!\d)", str(demo_port), re.sub(r"(?<!\d)6379(?!\d)", str(shield_port), text))


@pytest.mark.parametrize("lang,body,output", snippets())
def test_each_snippet_of_the_python_client_docs_runs_as_pasted(lang, body, output, server, tmp_path):
    code = substitute(body, server.port, free_port())
    env = client_env()
    if lang == "python":
        (tmp_path / "doc_snippet.py").write_text(code)
        env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], str(HERE)])
        run = subprocess.run([sys.executable, "-c", HARNESS, str(tmp_path)], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stdout + run.stderr
        expected = [m.group(1) for m in map(EXPECTED.match, body.splitlines()) if m]
        assert run.stdout.splitlines() == expected
        return
    shutil.copytree(CLIENT, tmp_path / "clients" / "python",
                    ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    env["PATH"] = f"/usr/bin:{env['PATH']}"
    env.pop("PYTHONPATH")
    env.update(PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    process = subprocess.Popen(["bash", "-c", code], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=240)
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)  # whatever the snippet left running
        except ProcessLookupError:
            pass
    assert process.returncode == 0, stdout + stderr
    if output is not None:
        assert stdout.strip() == output.strip()
