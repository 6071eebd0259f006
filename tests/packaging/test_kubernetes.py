"""deploy/kubernetes: what can be tested without a Kubernetes cluster (none is reachable here).

- Every object in the manifests carries what its API kind requires, and the objects agree with
  each other (selectors, labels, the Service the StatefulSet names, volumes, probes): a table of
  checks, each one a test.
- The cluster-create Job's script, taken from the manifest, forms a real six-node cluster of local
  servers with Shield and is idempotent (a second run only says the cluster is formed).
- The StatefulSet's pod template, and the stock-image variant's, run under `podman kube play` as a
  Pod that loads Shield: the readiness probe's command passes, and SHIELD.absorb answers once the
  single node owns the slots (a cluster-enabled node without slots answers CLUSTERDOWN).

Not tested: the StatefulSet, Service, PodDisruptionBudget and Job run by a real Kubernetes (DNS
names, volume claims, probes run by a kubelet, rolling updates): docs/deploy.md, section Kubernetes.
"""

import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import redis
import yaml
from shield_cluster import Cluster
from shield_packaging import SHIELD_IMAGE, TIMINGS, run
from shield_servers import HOST, Server, find_server, free_port, require, wait_until

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
REPO = DEPLOY.parents[1]
STATEFULSET = DEPLOY / "statefulset.yaml"
STOCK_STATEFULSET = DEPLOY / "stock-redis-image" / "statefulset.yaml"
JOB = DEPLOY / "cluster-create-job.yaml"
MANIFESTS = sorted(DEPLOY.glob("*.yaml")) + sorted(DEPLOY.glob("*/*.yaml"))
MODULE_IN_IMAGE = "/usr/lib/redis/modules/libredis_shield.so"


def project_version():
    match = re.search(r"^project\(redis_shield VERSION (\S+)", (REPO / "CMakeLists.txt").read_text(), re.M)
    return match.group(1)


# The image name users replace (docs/deploy.md): the project's image at the project's version.
PLACEHOLDER_IMAGE = f"redis-shield:{project_version()}"


def load(path):
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def objects():
    """(manifest, object) for every object of every manifest under deploy/kubernetes."""
    return [(path, obj) for path in MANIFESTS for obj in load(path)]


def shipped(kind):
    return [obj for _, obj in objects() if obj.get("kind") == kind]


# ---- the table of checks ---------------------------------------------------------------------

def pod_spec(obj):
    return obj["spec"]["template"]["spec"]


def containers(obj):
    spec = pod_spec(obj)
    return spec.get("initContainers", []) + spec.get("containers", [])


def matches(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def node_selector_matches_no_job(obj):
    return not any(matches(obj["spec"]["selector"], pod_spec_labels(job)) for job in shipped("Job"))


def pod_spec_labels(obj):
    return obj["spec"]["template"]["metadata"].get("labels", {})


def mounts_have_volumes(obj):
    volumes = {v["name"] for v in pod_spec(obj).get("volumes", [])}
    volumes |= {t["metadata"]["name"] for t in obj["spec"].get("volumeClaimTemplates", [])}
    return all(m["name"] in volumes for c in containers(obj) for m in c.get("volumeMounts", []))


def server(obj):
    """The container that runs redis-server (the one with the readiness probe)."""
    [redis_container] = [c for c in pod_spec(obj)["containers"] if c["name"] == "redis"]
    return redis_container


def option(obj, name):
    args = server(obj).get("args", [])
    return args[args.index(name) + 1] if name in args else None


def aof_on_a_claimed_volume(obj):
    claims = {t["metadata"]["name"] for t in obj["spec"].get("volumeClaimTemplates", [])}
    data = option(obj, "--dir")
    return option(obj, "--appendonly") == "yes" and any(
        m["mountPath"] == data and m["name"] in claims for m in server(obj).get("volumeMounts", []))


def readiness_checks_the_module(obj):
    command = " ".join(server(obj).get("readinessProbe", {}).get("exec", {}).get("command", []))
    return "MODULE LIST" in command and "shield" in command


def names_a_headless_service(obj):
    return any(s["metadata"]["name"] == obj["spec"]["serviceName"] and s["spec"].get("clusterIP") == "None"
               for s in shipped("Service"))


def service_selects_the_nodes(obj):
    return all(matches(obj["spec"]["selector"], pod_spec_labels(s)) for s in shipped("StatefulSet"))


def service_ports_exist(obj):
    named = {p["name"] for s in shipped("StatefulSet") for p in server(s).get("ports", [])}
    return all(p.get("targetPort") in named for p in obj["spec"]["ports"])


def pdb_selects_the_nodes(obj):
    return all(matches(obj["spec"]["selector"]["matchLabels"], pod_spec_labels(s)) for s in shipped("StatefulSet"))


def one_disruption_limit(obj):
    return ("minAvailable" in obj["spec"]) != ("maxUnavailable" in obj["spec"])


def job_nodes_are_the_statefulsets_pods(obj):
    env = {e["name"]: e.get("value") for c in pod_spec(obj)["containers"] for e in c.get("env", [])}
    [sts] = load(STATEFULSET)
    name, service = sts["metadata"]["name"], sts["spec"]["serviceName"]
    expected = [f"{name}-{i}.{service}:6379" for i in range(sts["spec"]["replicas"])]
    return env.get("SHIELD_NODES", "").split() == expected


def shield_images_are_the_placeholder(obj):
    images = [c["image"] for c in containers(obj) if "redis-shield" in c["image"]]
    return bool(images) and all(image == PLACEHOLDER_IMAGE for image in images)


API_VERSIONS = {"StatefulSet": "apps/v1", "Service": "v1", "Job": "batch/v1", "PodDisruptionBudget": "policy/v1"}

# (kind, what is checked, check): each row runs on every object of that kind (None: every object).
CHECKS = [
    (None, "apiVersion matches the kind", lambda o: API_VERSIONS.get(o.get("kind")) == o.get("apiVersion")),
    (None, "metadata.name is set", lambda o: bool(o.get("metadata", {}).get("name"))),
    ("StatefulSet", "spec.selector matches the template's labels",
     lambda o: matches(o["spec"]["selector"]["matchLabels"], pod_spec_labels(o))),
    ("StatefulSet", "spec.selector matches no Job's pods", node_selector_matches_no_job),
    ("StatefulSet", "spec.serviceName names a headless Service", names_a_headless_service),
    ("StatefulSet", "six replicas", lambda o: o["spec"]["replicas"] == 6),
    ("StatefulSet", "every container has a name and an image",
     lambda o: all(c.get("name") and c.get("image") for c in containers(o))),
    ("StatefulSet", "Shield's image is the documented placeholder", shield_images_are_the_placeholder),
    ("StatefulSet", "every volume mount names a volume or claim template", mounts_have_volumes),
    ("StatefulSet", "the readiness probe checks MODULE LIST for shield", readiness_checks_the_module),
    ("StatefulSet", "a liveness probe is set", lambda o: "livenessProbe" in server(o)),
    ("StatefulSet", "cluster-enabled yes", lambda o: option(o, "--cluster-enabled") == "yes"),
    ("StatefulSet", "nodes.conf is on the data volume",
     lambda o: option(o, "--cluster-config-file").startswith(option(o, "--dir") + "/")),
    ("StatefulSet", "appendonly yes, in --dir on a volumeClaimTemplate", aof_on_a_claimed_volume),
    ("StatefulSet", "maxmemory-policy noeviction (docs/production.md)",
     lambda o: option(o, "--maxmemory-policy") == "noeviction"),
    ("Service", "headless (clusterIP None)", lambda o: o["spec"].get("clusterIP") == "None"),
    ("Service", "selects the StatefulSets' pods", service_selects_the_nodes),
    ("Service", "its ports target named container ports", service_ports_exist),
    ("Job", "restartPolicy Never or OnFailure",
     lambda o: pod_spec(o).get("restartPolicy") in ("Never", "OnFailure")),
    ("Job", "every container has a name and an image",
     lambda o: all(c.get("name") and c.get("image") for c in containers(o))),
    ("Job", "Shield's image is the documented placeholder", shield_images_are_the_placeholder),
    ("Job", "SHIELD_NODES lists the StatefulSet's pods by DNS name", job_nodes_are_the_statefulsets_pods),
    ("PodDisruptionBudget", "has a selector", lambda o: bool(o["spec"].get("selector", {}).get("matchLabels"))),
    ("PodDisruptionBudget", "exactly one of minAvailable and maxUnavailable", one_disruption_limit),
    ("PodDisruptionBudget", "selects the StatefulSets' pods", pdb_selects_the_nodes),
]


def check_cases():
    cases = []
    for path, obj in objects():
        for kind, what, check in CHECKS:
            if kind in (None, obj.get("kind")):
                label = f"{path.relative_to(DEPLOY)}:{obj.get('kind')}/{obj.get('metadata', {}).get('name')}: {what}"
                cases.append(pytest.param(obj, check, id=label))
    return cases


def test_the_manifests_hold_each_kind_the_docs_promise():
    kinds = sorted(obj["kind"] for _, obj in objects())
    assert kinds == ["Job", "PodDisruptionBudget", "Service", "StatefulSet", "StatefulSet"]
    assert {p.relative_to(DEPLOY).as_posix() for p in MANIFESTS} == {
        "service.yaml", "statefulset.yaml", "cluster-create-job.yaml", "stock-redis-image/statefulset.yaml"}
    # `kubectl apply -f deploy/kubernetes/` (not recursive) must not apply both StatefulSets.
    assert [p.name for p in MANIFESTS if p.parent == DEPLOY and any(o["kind"] == "StatefulSet" for o in load(p))] == [
        "statefulset.yaml"]


@pytest.mark.parametrize("obj,check", check_cases())
def test_every_manifest_object_carries_what_its_kind_requires(obj, check):
    assert check(obj)


def test_the_stock_image_variant_loads_the_module_its_init_container_copies():
    sts = load(STOCK_STATEFULSET)[0]
    [init] = pod_spec(sts)["initContainers"]
    copied = init["command"][-1]
    assert init["command"][:2] == ["cp", MODULE_IN_IMAGE]
    assert option(sts, "--loadmodule") == copied
    shared = {m["name"] for m in init["volumeMounts"]} & {m["name"] for m in server(sts)["volumeMounts"]}
    assert [v for v in pod_spec(sts)["volumes"] if v["name"] in shared] == [{"name": "modules", "emptyDir": {}}]
    assert "redis-shield" not in server(sts)["image"]


# ---- the Job's script on real servers -----------------------------------------------------------

def job_script():
    [container] = pod_spec(load(JOB)[0])["containers"]
    assert container["command"][:2] == ["sh", "-c"]
    return container["command"][2]


def run_job(nodes, wait_seconds=30):
    env = dict(os.environ, SHIELD_NODES=" ".join(f"{HOST}:{n.port}" for n in nodes),
               SHIELD_WAIT_SECONDS=str(wait_seconds))
    return subprocess.run(["sh", "-c", job_script()], env=env, text=True, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=wait_seconds * len(nodes) + 120)


@pytest.fixture
def six_nodes():
    binary = find_server("redis7")
    require(binary is not None, "no redis-server: run scripts/install-deps.sh")
    require(shutil.which("redis-cli") is not None, "no redis-cli: run scripts/install-deps.sh")
    cluster = Cluster(binary, primaries=3, replicas=1)  # its six nodes, not yet joined
    try:
        for node in cluster.nodes:
            node.start()
        yield cluster
    finally:
        cluster.stop()


def test_the_cluster_create_job_forms_the_cluster_once_and_then_only_says_so(six_nodes):
    first = run_job(six_nodes.nodes)
    assert first.returncode == 0, first.stdout
    assert "[OK] All 16384 slots covered." in first.stdout
    six_nodes.wait_healthy(timeout=60)
    assert len(six_nodes.primaries()) == 3
    with six_nodes.primaries()[0].client() as c:
        ids = {row.split()[0] for row in c.execute_command("CLUSTER", "NODES").splitlines()}

    again = run_job(six_nodes.nodes)
    assert again.returncode == 0, again.stdout
    assert "cluster already formed" in again.stdout
    assert "--cluster create" not in again.stdout and "Performing hash slots allocation" not in again.stdout
    with six_nodes.primaries()[0].client() as c:
        assert {row.split()[0] for row in c.execute_command("CLUSTER", "NODES").splitlines()} == ids


def test_the_cluster_create_job_waits_for_shield_and_gives_up_on_a_node_without_it(six_nodes):
    # The last of the six nodes named runs without the module: the Job must not create a cluster.
    plain = Server(six_nodes.binary, cluster=True, module=None)
    try:
        plain.start()
        result = run_job(six_nodes.nodes[:5] + [plain], wait_seconds=2)
    finally:
        plain.cleanup()
    assert result.returncode == 1, result.stdout
    assert f"{HOST}:{plain.port} did not answer with Shield loaded within 2s" in result.stdout
    assert known_nodes(six_nodes.nodes[0]) == 1


def known_nodes(node):
    with node.client() as c:
        return int(c.cluster("INFO")["cluster_known_nodes"])


def test_the_cluster_create_job_creates_nothing_over_nodes_that_already_know_each_other(six_nodes):
    a, b = six_nodes.nodes[:2]
    with a.client() as c:
        c.execute_command("CLUSTER", "MEET", HOST, b.port)
    wait_until(lambda: all(known_nodes(n) == 2 for n in (a, b)), timeout=30, what="two nodes to know each other")
    result = run_job(six_nodes.nodes)
    assert result.returncode == 1, result.stdout
    assert "already belong to a cluster, but not all of" in result.stdout
    for node in six_nodes.nodes:
        with node.client() as c:
            assert c.cluster("INFO")["cluster_slots_assigned"] in (0, "0")


def test_cluster_meet_takes_no_dns_name_which_is_why_the_job_resolves_the_pods_names(six_nodes):
    a, b = six_nodes.nodes[:2]
    with a.client() as c:
        with pytest.raises(redis.ResponseError, match="Invalid node address"):
            c.execute_command("CLUSTER", "MEET", "localhost", b.port)
        assert "getent ahostsv4" in job_script()


# ---- the pod template under podman kube play ----------------------------------------------------

class PlayedPod:
    """A Pod made from a StatefulSet's pod template, run with `podman kube play` and removed with
    `podman kube down` (and `podman pod rm -f` if that leaves anything)."""

    def __init__(self, env, statefulset, workdir, extra_env=None):
        self.env = env
        template = statefulset["spec"]["template"]
        spec = yaml.safe_load(yaml.safe_dump(template["spec"]))
        self.port = free_port()
        self.name = f"shield-k8s-test-{self.port}"
        self.workdir = Path(workdir)
        # The claim template and any emptyDir become folders of ours (hostPath): podman 4.3 turns
        # an emptyDir into a named volume called after it, shared by every pod that uses the name.
        volumes = [v for v in spec.get("volumes", []) if "emptyDir" not in v]
        for name in [t["metadata"]["name"] for t in statefulset["spec"].get("volumeClaimTemplates", [])] + \
                [v["name"] for v in spec.get("volumes", []) if "emptyDir" in v]:
            folder = self.workdir / name
            folder.mkdir()
            volumes.append({"name": name, "hostPath": {"path": str(folder), "type": "Directory"}})
        spec["volumes"] = volumes
        for container in spec.get("initContainers", []) + spec["containers"]:
            container["image"] = SHIELD_IMAGE  # the image the tests build, for every placeholder
            container["env"] = container.get("env", []) + [
                {"name": k, "value": v} for k, v in (extra_env or {}).get(container["name"], {}).items()]
            # Ports on 127.0.0.1 only, on free ports (podman publishes a containerPort as the same
            # host port on every address otherwise).
            for port in container.get("ports", []):
                port["hostIP"] = HOST
                port["hostPort"] = self.port if port["containerPort"] == 6379 else free_port()
        # Never restart: a crash fails the test instead of passing unseen. (Podman 4.3 also applies
        # restartPolicy Always to the init containers: it restarts a finished one, and then fails
        # to remove it, "cannot remove container ... as it is running", and never starts the server.)
        spec["restartPolicy"] = "Never"
        self.manifest = self.workdir / "pod.yaml"
        self.manifest.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": self.name, "labels": template["metadata"]["labels"]},
            "spec": spec}))

    def container(self, name="redis"):
        return f"{self.name}-{name}"

    def __enter__(self):
        start = time.monotonic()
        try:
            run(["podman", "kube", "play", self.manifest], env=self.env, timeout=180)
            wait_until(self._answers, timeout=60, interval=0.2, what=f"the pod's server on {HOST}:{self.port}")
        except BaseException:
            self.down()
            raise
        self.started_in = time.monotonic() - start
        return self

    def _answers(self):
        with redis.Redis(host=HOST, port=self.port, socket_timeout=1) as c:
            return c.ping()

    def client(self):
        return redis.Redis(host=HOST, port=self.port, decode_responses=True, socket_timeout=5)

    def exec(self, *command, check=True):
        return run(["podman", "exec", self.container(), *command], env=self.env, timeout=60, check=check)

    def down(self):
        result = run(["podman", "kube", "down", self.manifest], env=self.env, timeout=120, check=False)
        run(["podman", "pod", "rm", "-f", "--ignore", self.name], env=self.env, timeout=60, check=False)
        return result

    def left_over(self):
        pods = run(["podman", "pod", "ps", "-q", "--filter", f"name={self.name}"], env=self.env).stdout.split()
        names = run(["podman", "ps", "-a", "--format", "{{.Names}}"], env=self.env).stdout.split()
        return pods + [n for n in names if n.startswith(self.name)]

    def __exit__(self, exc_type, *exc):
        down = self.down()
        if exc_type is not None:
            return
        assert down.returncode == 0, down.stderr
        assert not self.left_over(), f"podman kube down left {self.left_over()}"


def module_entries(client):
    return [dict(zip(m[::2], m[1::2])) for m in client.execute_command("MODULE", "LIST")]


def one_node_owns_every_slot(client):
    """A cluster-enabled node without slots answers CLUSTERDOWN: give this lone node all of them."""
    client.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
    wait_until(lambda: client.cluster("INFO")["cluster_state"] == "ok", timeout=30, interval=0.2,
               what="the one-node cluster to say cluster_state:ok")


def readiness_probe(statefulset):
    return server(statefulset)["readinessProbe"]["exec"]["command"]


@pytest.fixture
def kube_play(podman, shield_image):
    """podman's environment, once the image is built and catatonit is there: podman 4.3 builds the
    pod's infra ("pause") image from catatonit, which podman only recommends."""
    require(shutil.which("catatonit") is not None,
            "catatonit is missing: podman kube play needs it for a pod's infra container (apt-get install catatonit)")
    return podman


@pytest.fixture
def workdir():
    path = tempfile.mkdtemp(prefix="shield-k8s-")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_the_statefulsets_pod_template_loads_shield_under_podman_kube_play(kube_play, workdir):
    sts = load(STATEFULSET)[0]
    with PlayedPod(kube_play, sts, workdir) as pod, pod.client() as c:
        TIMINGS["podman kube play of statefulset.yaml's pod template"] = f"{pod.started_in:.1f}s"
        assert pod.exec(*readiness_probe(sts), check=False).returncode == 0
        assert [(m["name"].lower(), m["path"]) for m in module_entries(c)] == [("shield", MODULE_IN_IMAGE)]
        assert c.config_get("appendonly")["appendonly"] == "yes"
        assert c.info("cluster")["cluster_enabled"] == 1
        with pytest.raises(redis.ResponseError, match="CLUSTERDOWN"):
            c.execute_command("SHIELD.absorb", "k", 100, 60)
        one_node_owns_every_slot(c)
        assert c.execute_command("SHIELD.absorb", "k", 100, 60) == 99
        # The data-owner init container gave /data to the redis user: the AOF and nodes.conf are there.
        listing = pod.exec("ls", "/data").stdout.split()
        assert "appendonlydir" in listing and "nodes.conf" in listing


def test_the_stock_image_variant_loads_the_copied_module_under_podman_kube_play(kube_play, workdir):
    """The stock redis image is not reachable here: Shield's own image stands in for it (Debian's
    redis-server), told by SHIELD_MODULE_PATH that the module is the copy in /modules, so that its
    entrypoint adds nothing. /data is made writable for its redis user, as the official images'
    entrypoint does by changing its owner."""
    sts = load(STOCK_STATEFULSET)[0]
    pod = PlayedPod(kube_play, sts, workdir,
                    extra_env={"redis": {"SHIELD_MODULE_PATH": "/modules/libredis_shield.so"}})
    # k8s makes an emptyDir writable for every user; the data folder stands in for the chown.
    for folder in Path(workdir).iterdir():
        if folder.is_dir():
            folder.chmod(0o777)
    with pod, pod.client() as c:
        TIMINGS["podman kube play of stock-redis-image/statefulset.yaml's pod template"] = f"{pod.started_in:.1f}s"
        assert pod.exec(*readiness_probe(sts), check=False).returncode == 0
        assert [(m["name"].lower(), m["path"]) for m in module_entries(c)] == [
            ("shield", "/modules/libredis_shield.so")]
        one_node_owns_every_slot(c)
        assert c.execute_command("SHIELD.absorb", "k", 100, 60) == 99
        assert pod.exec("ls", "/modules").stdout.split() == ["libredis_shield.so"]
