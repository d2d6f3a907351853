"""The Ray cluster of a multi-node model, as the shell scripts its head and workers run.

vLLM spreads one model over several nodes through a Ray cluster: ``ray start --head`` on one node,
``ray start --address=<head>:<port> --block`` on the others, each advertising its own address in
``VLLM_HOST_IP``, and ``vllm serve ... --distributed-executor-backend ray`` on the head once every
node has joined. This module writes those scripts; a backend only decides how the head is found
and who runs ``ray start``.

The scripts read their per-node values from environment variables (the ``*_ENV`` names below), so
one text serves every pod of a stack and runs unchanged on one machine with other values. The serve
command (from :func:`pulumi_vllm.engine.argv.vllm_command`) sits in the head script between two marker
lines, where tools that read the workload find it and where a test may put another command.

Failure handling: the head waits for the expected node count with a bounded timeout, then runs vLLM
beside a watch that stops everything when a node leaves the cluster, so a dead worker never leaves a
head that looks healthy; the pod restarts and the cluster forms again.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

RAY_PORT = 6379
"""Port of the Ray head's GCS server (Ray's default)."""

RAY_CLIENT_SERVER_PORT = 10001
"""Port of the Ray Client server the head starts (Ray's default)."""

DEFAULT_WATCH_PERIOD_SECONDS = 10
"""How often the head checks that every node is still alive once vLLM runs."""

HOST_IP_ENV = "VLLM_HOST_IP"
"""This node's own address: Ray's node IP, and the address vLLM advertises for its workers."""
HEAD_HOST_ENV = "RAY_HEAD_HOST"
"""Where workers reach the head (a DNS name or an IP), for backends that do not provide one."""
HEAD_PORT_ENV = "RAY_HEAD_PORT"
"""Port of the head's GCS server."""
EXPECTED_NODES_ENV = "RAY_EXPECTED_NODES"
"""Nodes the cluster must have (head included) before vLLM starts."""
WAIT_SECONDS_ENV = "RAY_NODE_WAIT_SECONDS"
"""Bound on the head's wait for the nodes, and on a worker's wait for the head."""
WATCH_SECONDS_ENV = "RAY_NODE_WATCH_SECONDS"
"""Period of the head's node watch while vLLM runs (optional)."""
CLIENT_SERVER_PORT_ENV = "RAY_CLIENT_SERVER_PORT"
"""Port of the head's Ray Client server (optional; Ray's default 10001)."""
LWS_LEADER_ADDRESS_ENV = "LWS_LEADER_ADDRESS"
"""The leader pod's address, which LeaderWorkerSet injects into every pod of a group."""
KUBERAY_START_ENV = "KUBERAY_GEN_RAY_START_CMD"
"""The ``ray start`` command KubeRay (1.1 and later) generates for a pod and injects into it."""

HEAD_LOG_PREFIX = "[ray-head]"
WORKER_LOG_PREFIX = "[ray-worker]"

ALL_NODES_JOINED = "Ray nodes joined"
"""Printed by the head (``all N Ray nodes joined``) just before it starts the serve command."""

SERVE_BEGIN = "# serve command: begin"
SERVE_END = "# serve command: end"
"""Marker lines around the head script's serve command (one line that runs it in the background)."""

KUBERAY_RAY_START = (
    'eval "exec ${' + KUBERAY_START_ENV + ':?is not set: KubeRay 1.1 or later sets it when the RayCluster '
    'has the ray.io/overwrite-container-cmd annotation}"'
)
"""Runs KubeRay's generated ``ray start`` (it already carries ``--block``), as KubeRay itself would."""

NODE_COUNT_PROGRAM = f'''
import os, socket, sys, threading, time

mode = sys.argv[1]
expected = int(os.environ["{EXPECTED_NODES_ENV}"])
host, port = os.environ["{HOST_IP_ENV}"], int(os.environ["{HEAD_PORT_ENV}"])
alive = [0]


def log(message):
    print("{HEAD_LOG_PREFIX} " + message, flush=True)


def fail(message):
    log("ERROR: " + message)
    os._exit(1)  # a Ray call that hangs must not keep this process alive


def count_alive():
    import ray

    return sum(1 for node in ray.nodes() if node["Alive"])


def connect():
    import ray

    ray.init(address=f"{{host}}:{{port}}", logging_level="ERROR", log_to_driver=False)


if mode == "wait":
    timeout = float(os.environ["{WAIT_SECONDS_ENV}"])
    timer = threading.Timer(timeout, lambda: fail(
        f"only {{alive[0]}} of {{expected}} Ray nodes joined within {{timeout:g}}s; check that every worker pod "
        f"runs and reaches the head at {{host}}:{{port}} (their logs say which address they use)"
    ))
    timer.daemon = True
    timer.start()
    # ray.init retries an absent head forever: let the GCS port open first.
    while True:
        try:
            socket.create_connection((host, port), timeout=2).close()
            break
        except OSError:
            time.sleep(1)
    connect()
    while True:
        count = count_alive()
        if count != alive[0]:
            alive[0] = count
            log(f"{{count}} of {{expected}} Ray nodes alive")
        if count >= expected:
            break
        time.sleep(2)
    timer.cancel()
    log(f"all {{expected}} {ALL_NODES_JOINED}")
    import ray

    ray.shutdown()
    sys.exit(0)

period = float(os.environ.get("{WATCH_SECONDS_ENV}") or {DEFAULT_WATCH_PERIOD_SECONDS})
connect()
while True:
    time.sleep(period)
    try:
        count = count_alive()
    except Exception as error:
        fail(f"lost contact with the Ray cluster ({{error}})")
    if count < expected:
        fail(
            f"{{expected - count}} of {{expected}} Ray nodes left the cluster; stopping vLLM so that the pod "
            "restarts and the cluster forms again"
        )
'''.strip("\n")
"""Python run on the head: ``wait`` for the expected node count (bounded), or ``watch`` that it holds."""


def head_start_command(gpus_per_node: int) -> str:
    """``ray start --head`` as the plain and LeaderWorkerSet heads run it (in the foreground, ``--block``).

    The dashboard stays off: vLLM does not need it, and it would open an unauthenticated job API.
    """
    return (
        f'ray start --head --port="${{{HEAD_PORT_ENV}}}" --node-ip-address="${{{HOST_IP_ENV}}}" '
        f"--num-gpus={gpus_per_node} --include-dashboard=false "
        f'--ray-client-server-port="${{{CLIENT_SERVER_PORT_ENV}:-{RAY_CLIENT_SERVER_PORT}}}" '
        "--disable-usage-stats --block"
    )


def worker_start_command(gpus_per_node: int) -> str:
    """``ray start`` joining the head at ``$head`` (set by :func:`worker_script`), in the foreground."""
    return (
        f'ray start --address="${{head}}" --node-ip-address="${{{HOST_IP_ENV}}}" '
        f"--num-gpus={gpus_per_node} --disable-usage-stats --block"
    )


def head_script(ray_start: str, serve_argv: Sequence[str]) -> str:
    """The head's script: start Ray, wait for every node, run the serve command, stop all if one part ends.

    ``ray_start`` is a shell command that runs the Ray head in the foreground until it stops
    (:func:`head_start_command`, or :data:`KUBERAY_RAY_START`); ``serve_argv`` is the vLLM command
    line. The script exits non-zero, with a line saying why, when the nodes do not join in time,
    when Ray or vLLM stops, or when a node leaves the cluster.
    """
    if not serve_argv:
        raise ValueError("the head script needs a serve command")
    return f"""set -uo pipefail
log() {{ printf '%s %s\\n' '{HEAD_LOG_PREFIX}' "$*"; }}
ulimit -n 65536 2>/dev/null || log "could not raise the open-file limit to 65536; Ray may run short of file descriptors"
IFS= read -r -d '' node_count <<'PY' || true
{NODE_COUNT_PROGRAM}
PY
ray_pid=""
wait_pid=""
serve_pid=""
watch_pid=""
stop() {{
  trap - TERM INT
  # vLLM first, so it leaves the Ray cluster before the cluster goes away.
  for pid in "$serve_pid" "$watch_pid" "$wait_pid"; do
    if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; fi
  done
  if [ -n "$ray_pid" ]; then kill -TERM "$ray_pid" 2>/dev/null; wait "$ray_pid" 2>/dev/null; fi
}}
first_exit() {{
  # Sets $finished to the first of the given processes to exit, and $status to its exit status.
  # (Polled: `wait -n` can miss a child that exited before it was called.)
  finished=""
  while [ -z "$finished" ]; do
    for pid in "$@"; do
      if ! kill -0 "$pid" 2>/dev/null; then finished=$pid; break; fi
    done
    if [ -z "$finished" ]; then sleep 1; fi
  done
  wait "$finished"
  status=$?
}}
trap 'log "stop signal received: stopping vLLM and Ray"; stop; exit 143' TERM INT
log "starting the Ray head at ${{{HOST_IP_ENV}}}:${{{HEAD_PORT_ENV}}}; waiting up to ${{{WAIT_SECONDS_ENV}}}s for ${{{EXPECTED_NODES_ENV}}} nodes"
{ray_start} &
ray_pid=$!
python3 -c "$node_count" wait &
wait_pid=$!
first_exit "$ray_pid" "$wait_pid"
if [ "$finished" != "$wait_pid" ] || [ "$status" -ne 0 ]; then
  if [ "$finished" = "$ray_pid" ]; then
    log "ERROR: the Ray head stopped (exit status $status) before every node joined; see its output above"
    ray_pid=""
  else
    wait_pid=""
  fi
  stop
  exit 1
fi
wait_pid=""
log "all nodes joined: starting the serve command"
{SERVE_BEGIN}
{shlex.join(serve_argv)} &
{SERVE_END}
serve_pid=$!
python3 -c "$node_count" watch &
watch_pid=$!
first_exit "$ray_pid" "$serve_pid" "$watch_pid"
case "$finished" in
  "$serve_pid") what="vLLM"; serve_pid="";;
  "$ray_pid") what="the Ray head"; ray_pid="";;
  *) what="the node watch"; watch_pid="";;
esac
log "ERROR: $what stopped (exit status $status); stopping the rest so that the pod restarts"
stop
exit 1
"""


def worker_script(ray_start: str, head_host: str | None) -> str:
    """A worker's script: wait (bounded) until the head's port answers, then run ``ray start`` in its place.

    ``head_host`` is a shell expression for the head's host (``${RAY_HEAD_HOST}``,
    ``${LWS_LEADER_ADDRESS}``); ``None`` when the backend itself waits for the head (KubeRay's
    init container) and ``ray_start`` already knows the address.
    """
    lines = [
        "set -uo pipefail",
        f"log() {{ printf '%s %s\\n' '{WORKER_LOG_PREFIX}' \"$*\"; }}",
        "ulimit -n 65536 2>/dev/null || log \"could not raise the open-file limit to 65536\"",
    ]
    if head_host is not None:
        lines += [
            f'head_host="{head_host}"',
            f'head="${{head_host}}:${{{HEAD_PORT_ENV}}}"',
            f'log "waiting up to ${{{WAIT_SECONDS_ENV}}}s for the Ray head at ${{head}}"',
            f"deadline=$(( SECONDS + {WAIT_SECONDS_ENV} ))",
            # A bare TCP connect: `ray start` against an absent head can wait forever.
            (
                f"until timeout 5 bash -c 'exec 3<>\"/dev/tcp/$1/$2\"' _ \"$head_host\" \"${{{HEAD_PORT_ENV}}}\""
                " 2>/dev/null; do"
            ),
            "  if (( SECONDS >= deadline )); then",
            f'    log "ERROR: the Ray head at ${{head}} did not answer within ${{{WAIT_SECONDS_ENV}}}s; check the head pod"',
            "    exit 1",
            "  fi",
            "  sleep 2",
            "done",
            f'log "joining the Ray cluster at ${{head}} as ${{{HOST_IP_ENV}}}"',
            f"exec {ray_start}",
        ]
    else:
        lines += [f'log "joining the Ray cluster as ${{{HOST_IP_ENV}}}"', ray_start]
    return "\n".join(lines) + "\n"


def ray_environment(
    *,
    expected_nodes: int,
    wait_timeout_seconds: int,
    port: int = RAY_PORT,
    head_host: str | None = None,
) -> dict[str, str]:
    """The plain environment values the scripts read (``VLLM_HOST_IP`` comes from the platform)."""
    env = {
        HEAD_PORT_ENV: str(port),
        EXPECTED_NODES_ENV: str(expected_nodes),
        WAIT_SECONDS_ENV: str(wait_timeout_seconds),
    }
    if head_host is not None:
        env[HEAD_HOST_ENV] = head_host
    return env
