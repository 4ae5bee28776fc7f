"""A real Apache Kafka cluster (KRaft, combined broker+controller nodes) run from the Maven jars.

:class:`KafkaCluster` formats and starts N local JVMs on free loopback ports and tears them down
again; the pytest fixtures, ``python -m gateway.infra up`` and ``gateway demo`` use it where no
Docker engine exists. Process supervision lives in :mod:`gateway.infra.process`.

All calls block (they poll the JVMs' logs); from async code, run them in a thread.
"""

from __future__ import annotations

import base64
import logging
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

from gateway.errors import InfraError, InvalidStateError
from gateway.infra import maven
from gateway.infra.process import (
    DEFAULT_STOP_GRACE_S,
    LOOPBACK,
    POLL_S,
    WORKDIR_PROPERTY,
    JavaProcess,
    forget_at_exit,
    read_tail,
    reserve_ports,
    stop_at_exit,
    stop_processes,
)

log = logging.getLogger(__name__)

READY_MARKER = b"Kafka Server started"
DEFAULT_START_TIMEOUT_S = 60.0
# Short-lived StorageTool runs: a small heap and no JIT tiers beyond C1 start fastest.
_TOOL_JVM_OPTS = ("-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-XX:-UsePerfData")
_FORMAT_TIMEOUT_S = 60.0


# --------------------------------------------------------------------------------------------------
# The cluster


def new_cluster_id() -> str:
    """A Kafka cluster id, as ``StorageTool random-uuid`` prints it, without paying a JVM start.

    Kafka's ``Uuid.randomUuid`` is a type-4 UUID in URL-safe base64 without padding, re-drawn when
    it would start with '-' (which command lines take for an option).
    """
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not text.startswith("-"):
            return text


@dataclass(frozen=True)
class BrokerTls:
    """The TLS identity of the ``MTLS`` listener, as PEM files (Kafka 4 reads PEM stores)."""

    keystore: Path
    """The broker's private key (unencrypted PKCS#8) followed by its certificate chain."""
    truststore: Path
    """The CA certificate(s) a client's certificate must chain to."""


# Extra client listeners: name -> security protocol. Brokers talk to each other over PLAINTEXT.
SASL_LISTENER, OAUTH_LISTENER, TLS_LISTENER = "SASL", "OAUTH", "MTLS"
_PROTOCOLS = {
    SASL_LISTENER: "SASL_PLAINTEXT",
    OAUTH_LISTENER: "SASL_PLAINTEXT",
    TLS_LISTENER: "SSL",
}
_MECHANISMS = {SASL_LISTENER: "PLAIN", OAUTH_LISTENER: "OAUTHBEARER"}
_OAUTH_UNSECURED = "org.apache.kafka.common.security.oauthbearer"


@dataclass
class _Node:
    index: int
    node_id: int
    port: int
    controller_port: int
    dir: Path
    extra_ports: dict[str, int] = field(default_factory=dict)
    process: JavaProcess | None = None

    @property
    def config_path(self) -> Path:
        return self.dir / "server.properties"

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    @property
    def log_path(self) -> Path:
        return self.dir / "kafka.log"

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def listener_address(self, name: str) -> str:
        if name not in self.extra_ports:
            raise InvalidStateError(f"the cluster has no {name} listener")
        return f"{LOOPBACK}:{self.extra_ports[name]}"


class KafkaCluster:
    """N combined broker+controller Kafka nodes on loopback, from ``deploy/kafka/target/libs``.

    One node uses a dynamic quorum formatted ``--standalone``. More nodes use a static quorum
    (``controller.quorum.voters``), all formatted with one cluster id, with replication factor
    ``min(3, N)`` and ``min.insync.replicas`` 2 from three nodes on, for topics and internal topics.

    Nodes are addressed by index ``0 .. N-1`` (``node.id`` is index + 1). Ports are chosen once, at
    the first :meth:`start`, and kept: a node restarted with :meth:`start_node` rejoins as itself.
    Without ``work_dir`` the cluster lives in a temporary directory that :meth:`stop` deletes; with
    one, the data survives :meth:`stop` and a later :meth:`start` reuses it.

    With ``sasl_users`` ({user: password}) every node also listens on a ``SASL_PLAINTEXT`` listener
    named ``SASL`` with the PLAIN mechanism (:attr:`sasl_bootstrap_servers`), its users configured
    in ``listener.name.sasl.plain.sasl.jaas.config``; brokers keep talking to each other over the
    unauthenticated ``PLAINTEXT`` one, which stays open for tests that need both.

    With ``oauthbearer`` a listener ``OAUTH`` (SASL_PLAINTEXT) takes SASL OAUTHBEARER logins and
    checks their tokens with Kafka's unsecured validator (``OAuthBearerUnsecuredValidatorCallback
    Handler``: unsigned JWS, ``alg: none``, whose ``sub`` is the principal and ``exp`` is honoured),
    so a test can play the OIDC provider (:attr:`oauth_bootstrap_servers`). With ``tls`` a listener
    ``MTLS`` (SSL) requires a client certificate signed by ``tls.truststore``
    (:attr:`tls_bootstrap_servers`).
    """

    def __init__(
        self,
        nodes: int = 1,
        *,
        ports: Sequence[int] = (),
        work_dir: Path | None = None,
        overrides: Mapping[str, str] | None = None,
        sasl_users: Mapping[str, str] | None = None,
        oauthbearer: bool = False,
        oauthbearer_scope: str | None = None,
        tls: BrokerTls | None = None,
        start_timeout: float = DEFAULT_START_TIMEOUT_S,
        stop_grace: float = DEFAULT_STOP_GRACE_S,
        quick_jit: bool = True,
        stop_at_exit: bool = True,
    ) -> None:
        """
        :param nodes: how many nodes (each broker and controller).
        :param ports: fixed client ports for the first ``len(ports)`` nodes; the rest are free ones.
        :param overrides: extra or replacement ``server.properties`` entries for every node.
        :param sasl_users: users and passwords of an extra SASL_PLAINTEXT (PLAIN) listener.
        :param oauthbearer: an extra SASL_PLAINTEXT listener for OAUTHBEARER (unsecured tokens).
        :param oauthbearer_scope: a scope every token must carry there (``scope`` claim).
        :param tls: the key and CA of an extra SSL listener that requires client certificates.
        :param quick_jit: ``-XX:TieredStopAtLevel=1``: faster start, lower peak throughput; turn it
            off for benchmarks.
        :param stop_at_exit: stop the JVMs when this interpreter exits; False for a detached stack.
        """
        if nodes < 1:
            raise ValueError(f"a cluster needs at least one node, not {nodes}")
        if len(ports) > nodes:
            raise ValueError(f"{len(ports)} ports given for {nodes} node(s)")
        self._node_count = nodes
        self._fixed_ports = list(ports)
        self._given_work_dir = work_dir
        self._overrides = dict(overrides or {})
        self._sasl_users = dict(sasl_users or {})
        for user, password in self._sasl_users.items():
            # They go into a JAAS line between double quotes, inside a .properties file.
            if not user.isidentifier() or any(c in password for c in '"\\\n;'):
                raise ValueError(
                    f"SASL user {user!r}: a name like an identifier, a password "
                    "without quotes, backslashes, semicolons or newlines"
                )
        self._oauthbearer = oauthbearer
        if oauthbearer_scope is not None and not oauthbearer_scope.replace("-", "").isalnum():
            raise ValueError(f"OAUTHBEARER scope {oauthbearer_scope!r}: letters, digits and '-'")
        self._oauthbearer_scope = oauthbearer_scope
        self._tls = tls
        self._listeners = [
            name
            for name, wanted in (
                (SASL_LISTENER, bool(self._sasl_users)),
                (OAUTH_LISTENER, oauthbearer),
                (TLS_LISTENER, tls is not None),
            )
            if wanted
        ]
        self._start_timeout = start_timeout
        self._stop_grace = stop_grace
        self._quick_jit = quick_jit
        self._stop_at_exit = stop_at_exit
        self._work_dir: Path | None = None
        self._nodes: list[_Node] = []
        self._started = False

    def __repr__(self) -> str:
        where = self.bootstrap_servers if self._nodes else "not started"
        return f"KafkaCluster(nodes={self._node_count}, {where})"

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- public state ------------------------------------------------------------------------------

    @property
    def node_count(self) -> int:
        return self._node_count

    @property
    def bootstrap_servers(self) -> str:
        """Comma-separated ``127.0.0.1:port`` of every node, for Kafka clients."""
        return ",".join(node.address for node in self._require_nodes())

    @property
    def work_dir(self) -> Path:
        if self._work_dir is None:
            raise InvalidStateError("the cluster has not been started")
        return self._work_dir

    @property
    def sasl_bootstrap_servers(self) -> str:
        """Comma-separated ``127.0.0.1:port`` of every node's SASL_PLAINTEXT (PLAIN) listener."""
        return self.listener_bootstrap_servers(SASL_LISTENER)

    @property
    def oauth_bootstrap_servers(self) -> str:
        """Comma-separated ``127.0.0.1:port`` of every node's OAUTHBEARER listener."""
        return self.listener_bootstrap_servers(OAUTH_LISTENER)

    @property
    def tls_bootstrap_servers(self) -> str:
        """Comma-separated ``127.0.0.1:port`` of every node's mutual-TLS listener."""
        return self.listener_bootstrap_servers(TLS_LISTENER)

    def listener_bootstrap_servers(self, name: str) -> str:
        return ",".join(node.listener_address(name) for node in self._require_nodes())

    def node_address(self, index: int) -> str:
        return self._node(index).address

    def node_id(self, index: int) -> int:
        return self._node(index).node_id

    def log_path(self, index: int) -> Path:
        return self._node(index).log_path

    def is_running(self, index: int) -> bool:
        process = self._node(index).process
        return process is not None and process.is_running()

    def pids(self) -> list[int]:
        return [n.process.pid for n in self._nodes if n.process and n.process.pid is not None]

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> Self:
        """Fetch the jars if needed, format new nodes, start every node and wait until all are up.

        Raises :class:`InfraError` (with the tail of the failing node's log) if a node exits or is
        not ready within the start timeout; nothing is left running then.
        """
        if self._started:
            raise InvalidStateError(f"{self!r} is already started")
        began = time.monotonic()
        maven.ensure_kafka_libs()
        java = maven.find_java()
        try:
            self._prepare()
            self._format(java)
            for node in self._nodes:
                self._launch(node, java)
            self._wait_ready(self._nodes)
        except BaseException:
            # Nothing left behind; the error carries the log tail, so the temp dir can go too.
            self._stop_with_grace(0.0)
            raise
        self._started = True
        if self._stop_at_exit:
            stop_at_exit(self)
        log.info(
            "Kafka cluster of %d node(s) ready at %s in %.1f s (work dir %s)",
            self._node_count,
            self.bootstrap_servers,
            time.monotonic() - began,
            self._work_dir,
        )
        return self

    def stop(self) -> None:
        """Stop every node (SIGTERM, SIGKILL after the grace period). Idempotent."""
        self._stop_with_grace(self._stop_grace)

    def _stop_with_grace(self, grace: float) -> None:
        stop_processes([n.process for n in self._nodes if n.process], grace)
        forget_at_exit(self)
        self._started = False
        if self._given_work_dir is None and self._work_dir is not None:
            # A temporary cluster is not restartable: drop its data and its ports with it.
            shutil.rmtree(self._work_dir, ignore_errors=True)
            self._work_dir = None
            self._nodes = []

    def stop_node(self, index: int) -> None:
        """Stop one node gracefully (controlled shutdown, leadership moves first)."""
        process = self._node(index).process
        if process is not None:
            process.stop(self._stop_grace)

    def kill_node(self, index: int) -> None:
        """SIGKILL one node: a crash, without controlled shutdown."""
        process = self._node(index).process
        if process is not None:
            process.kill()

    def start_node(self, index: int) -> None:
        """Start a stopped or killed node again and wait until it is up."""
        node = self._node(index)
        if not self._started:
            raise InvalidStateError(f"{self!r} is not started")
        if node.process is not None and node.process.is_running():
            raise InvalidStateError(f"node {node.node_id} is already running")
        self._launch(node, maven.find_java())
        try:
            self._wait_ready([node])
        except BaseException:
            if node.process is not None:
                node.process.kill()
            raise

    # -- internals ---------------------------------------------------------------------------------

    def _require_nodes(self) -> list[_Node]:
        if not self._nodes:
            raise InvalidStateError("the cluster has not been started")
        return self._nodes

    def _node(self, index: int) -> _Node:
        nodes = self._require_nodes()
        if not 0 <= index < len(nodes):
            raise IndexError(f"node index {index} out of range for {len(nodes)} node(s)")
        return nodes[index]

    def _prepare(self) -> None:
        """Choose the work dir and ports (once) and write every node's server.properties."""
        if self._work_dir is None:
            if self._given_work_dir is not None:
                self._work_dir = self._given_work_dir.resolve()
                self._work_dir.mkdir(parents=True, exist_ok=True)
            else:
                self._work_dir = Path(tempfile.mkdtemp(prefix="kafka-cluster-")).resolve()
        if not self._nodes:
            count = self._node_count
            listeners = 2 + len(self._listeners)
            ports = reserve_ports(self._fixed_ports, listeners * count - len(self._fixed_ports))
            self._nodes = [
                _Node(
                    i,
                    i + 1,
                    ports[i],
                    ports[count + i],
                    self._work_dir / f"node-{i + 1}",
                    extra_ports={
                        name: ports[(2 + k) * count + i] for k, name in enumerate(self._listeners)
                    },
                )
                for i in range(count)
            ]
        for node in self._nodes:
            for sub in (node.dir, node.data_dir, node.dir / "logs", node.dir / "tmp"):
                sub.mkdir(parents=True, exist_ok=True)
            lines = [f"{key}={value}" for key, value in self._node_config(node).items()]
            node.config_path.write_text("\n".join(lines) + "\n")

    def _node_config(self, node: _Node) -> dict[str, str]:
        count = self._node_count
        replication = str(min(3, count))
        min_isr = "2" if count >= 3 else "1"
        # Two cores are the norm here: fewer threads per JVM when several share them.
        network, io, background = ("2", "4", "4") if count == 1 else ("1", "2", "2")
        listeners = (
            f"PLAINTEXT://{LOOPBACK}:{node.port},CONTROLLER://{LOOPBACK}:{node.controller_port}"
        )
        config = {
            "process.roles": "broker,controller",
            "node.id": str(node.node_id),
            "listeners": listeners,
            "advertised.listeners": listeners,
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(node.data_dir),
            "num.partitions": "3",
            "default.replication.factor": replication,
            "min.insync.replicas": min_isr,
            # Internal topics: Kafka's 50 partitions each make the first group join slow.
            "offsets.topic.replication.factor": replication,
            "offsets.topic.num.partitions": "3",
            "transaction.state.log.replication.factor": replication,
            "transaction.state.log.min.isr": min_isr,
            "transaction.state.log.num.partitions": "3",
            "share.coordinator.state.topic.replication.factor": replication,
            "share.coordinator.state.topic.min.isr": min_isr,
            "group.initial.rebalance.delay.ms": "0",
            "num.network.threads": network,
            "num.io.threads": io,
            "background.threads": background,
            # Topics are created explicitly, so a typo fails instead of making a topic.
            "auto.create.topics.enable": "false",
        }
        if count == 1:
            config["controller.quorum.bootstrap.servers"] = f"{LOOPBACK}:{node.controller_port}"
        else:
            config["controller.quorum.voters"] = ",".join(
                f"{n.node_id}@{LOOPBACK}:{n.controller_port}" for n in self._nodes
            )
            # Fence a crashed broker (and so drop it from ISRs) in 4 s rather than 9 s: local
            # clusters exist for fault tests, which wait for exactly that.
            config["broker.session.timeout.ms"] = "4000"
            config["broker.heartbeat.interval.ms"] = "500"
        if node.extra_ports:
            config.update(self._extra_listener_config(node))
        config.update(self._overrides)
        return config

    def _extra_listener_config(self, node: _Node) -> dict[str, str]:
        """The ``SASL``, ``OAUTH`` and ``MTLS`` listeners beside PLAINTEXT and CONTROLLER."""
        listeners = ",".join(
            [f"{name}://{LOOPBACK}:{port}" for name, port in node.extra_ports.items()]
            + [f"PLAINTEXT://{LOOPBACK}:{node.port}"]
            + [f"CONTROLLER://{LOOPBACK}:{node.controller_port}"]
        )
        protocols = ",".join(f"{name}:{_PROTOCOLS[name]}" for name in node.extra_ports)
        config = {
            "listeners": listeners,
            "advertised.listeners": listeners,
            "listener.security.protocol.map": f"CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,{protocols}",
        }
        mechanisms = [_MECHANISMS[name] for name in node.extra_ports if name in _MECHANISMS]
        if mechanisms:
            config["sasl.enabled.mechanisms"] = ",".join(mechanisms)
        if SASL_LISTENER in node.extra_ports:
            # The JAAS line lists the PLAIN users with their passwords.
            users = " ".join(f'user_{user}="{pw}"' for user, pw in self._sasl_users.items())
            config["listener.name.sasl.sasl.enabled.mechanisms"] = "PLAIN"
            config["listener.name.sasl.plain.sasl.jaas.config"] = (
                f"org.apache.kafka.common.security.plain.PlainLoginModule required {users};"
            )
        if OAUTH_LISTENER in node.extra_ports:
            prefix = "listener.name.oauth.oauthbearer."
            config["listener.name.oauth.sasl.enabled.mechanisms"] = "OAUTHBEARER"
            # The login module's own (unsecured) token is only for the broker as a client; the
            # validator reads its options (a required scope) from the same JAAS line.
            scope = self._oauthbearer_scope
            required = f' unsecuredValidatorRequiredScope="{scope}"' if scope else ""
            config[prefix + "sasl.jaas.config"] = (
                f"{_OAUTH_UNSECURED}.OAuthBearerLoginModule required "
                f'unsecuredLoginStringClaim_sub="broker"{required};'
            )
            config[prefix + "sasl.server.callback.handler.class"] = (
                f"{_OAUTH_UNSECURED}.internals.unsecured.OAuthBearerUnsecuredValidatorCallbackHandler"
            )
        if self._tls is not None and TLS_LISTENER in node.extra_ports:
            prefix = "listener.name.mtls."
            config[prefix + "ssl.keystore.type"] = "PEM"
            config[prefix + "ssl.keystore.location"] = str(self._tls.keystore)
            config[prefix + "ssl.truststore.type"] = "PEM"
            config[prefix + "ssl.truststore.location"] = str(self._tls.truststore)
            config[prefix + "ssl.client.auth"] = "required"
        return config

    def _common_java_args(self, node: _Node) -> list[str]:
        return [
            "-cp",
            str(maven.KAFKA_LIBS_DIR / "*"),
            f"-Dlog4j2.configurationFile={maven.KAFKA_LOG4J_CONFIG.as_uri()}",
            f"-Dkafka.logs.dir={node.dir / 'logs'}",
            # Native codecs (zstd, snappy, lz4) unpack here: avoids a noexec /tmp.
            f"-Djava.io.tmpdir={node.dir / 'tmp'}",
            f"-D{WORKDIR_PROPERTY}={self.work_dir}",
        ]

    def _format(self, java: str) -> None:
        """Format every node not formatted yet, in parallel (each is a ~1 s JVM start)."""
        todo = [n for n in self._nodes if not (n.data_dir / "meta.properties").is_file()]
        if not todo:
            return
        cluster_id = new_cluster_id()
        running: list[tuple[_Node, subprocess.Popen[bytes], Path]] = []
        try:
            for node in todo:
                argv = [java, *_TOOL_JVM_OPTS, *self._common_java_args(node)]
                argv += ["kafka.tools.StorageTool", "format", "-t", cluster_id]
                argv += ["-c", str(node.config_path)]
                if self._node_count == 1:
                    argv.append("--standalone")
                output = node.dir / "format.log"
                with output.open("wb") as out:
                    popen = subprocess.Popen(
                        argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
                    )
                running.append((node, popen, output))
            for node, popen, output in running:
                code = popen.wait(timeout=_FORMAT_TIMEOUT_S)
                if code != 0:
                    raise InfraError(
                        f"formatting Kafka node {node.node_id} failed with exit code {code}:\n"
                        f"{read_tail(output)}"
                    )
        except subprocess.TimeoutExpired as exc:
            raise InfraError(
                f"formatting Kafka storage took over {_FORMAT_TIMEOUT_S:.0f} s"
            ) from exc
        finally:
            for _, popen, _ in running:
                if popen.poll() is None:
                    popen.kill()
                popen.wait()
        log.debug("formatted %d Kafka node(s) with cluster id %s", len(todo), cluster_id)

    def _launch(self, node: _Node, java: str) -> None:
        single = self._node_count == 1
        heap = ["-Xms512m", "-Xmx1g"] if single else ["-Xms256m", "-Xmx512m"]
        jvm = [
            *heap,
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:InitiatingHeapOccupancyPercent=35",
            "-XX:+ExplicitGCInvokesConcurrent",
            # No hsperfdata files left in /tmp by every test JVM.
            "-XX:-UsePerfData",
            "-Djava.awt.headless=true",
        ]
        if self._quick_jit:
            jvm.append("-XX:TieredStopAtLevel=1")
        argv = [java, *jvm, *self._common_java_args(node), "kafka.Kafka", str(node.config_path)]
        node.process = JavaProcess(
            f"kafka node {node.node_id}",
            argv,
            log_path=node.log_path,
            pid_path=node.dir / "kafka.pid",
        )
        node.process.start()

    def _wait_ready(self, nodes: Sequence[_Node]) -> None:
        """Wait until every node logged "Kafka Server started"; fail fast if one exits."""
        deadline = time.monotonic() + self._start_timeout
        pending = [(node, node.process) for node in nodes if node.process is not None]
        while pending:
            for node, process in list(pending):
                if process.saw(READY_MARKER):
                    pending.remove((node, process))
                elif not process.is_running():
                    raise InfraError(
                        f"Kafka node {node.node_id} exited with code {process.exit_code} during "
                        f"start-up; {node.log_path} ends with:\n{process.log_tail()}"
                    )
            if pending and time.monotonic() > deadline:
                late = pending[0][0]
                raise InfraError(
                    f"Kafka node(s) {[n.node_id for n, _ in pending]} not ready within "
                    f"{self._start_timeout:.1f} s; {late.log_path} ends with:\n"
                    f"{read_tail(late.log_path)}"
                )
            if pending:
                time.sleep(POLL_S)
