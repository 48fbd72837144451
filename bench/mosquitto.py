"""A real Mosquitto broker for the tests and the benchmarks, and a paho subscriber that records what arrives.

`Mosquitto` writes its config into the test's tmp dir and runs `/usr/sbin/mosquitto -c ...` as a
child process on a free 127.0.0.1 port (never 1883, which a packaged broker may hold). It can be
stopped, killed and started again on the same port, optionally with TLS (a throw-away CA and
server certificate made with openssl), a password file (mosquitto_passwd), an ACL file (`acl`: what
the anonymous clients may read and write) and the dynamic-security plugin (`dynsec`: its JSON
configuration; unlike an ACL file in Mosquitto 2.0, it can refuse a subscription).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from moodcast.mqtt.embedded_broker import free_port

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
DYNSEC_PLUGINS = ("/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
                  "/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so")
HOST = "127.0.0.1"


def _run(*args: str, cwd: Path) -> None:
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=30)
    if result.returncode:
        raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")


def make_ca(directory: Path, name: str = "ca") -> tuple[Path, Path]:
    """A self-signed CA (EC P-256, 2 days) -> (cert, key)."""
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    _run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN=moodcast test {name}",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=directory)
    return cert, key


def make_server_cert(directory: Path, ca_cert: Path, ca_key: Path) -> tuple[Path, Path]:
    """A server certificate for 127.0.0.1/localhost signed by the CA -> (cert, key)."""
    cert, key, csr = directory / "server.crt", directory / "server.key", directory / "server.csr"
    ext = directory / "server.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\n"
                   "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
                   "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
    _run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(csr), "-subj", "/CN=localhost", cwd=directory)
    _run("openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key),
         "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(ext), cwd=directory)
    return cert, key


class Mosquitto:
    """One mosquitto process on 127.0.0.1:`port`; start() again after stop()/kill() reuses the port."""

    def __init__(self, directory: Path, *, tls: bool = False, username: str = "", password: str = "",
                 persistence: bool = False, port: int | None = None, acl: str = "", dynsec: dict | None = None):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.host, self.port = HOST, port or free_port()
        self.tls, self.persistence = tls, persistence
        self.username, self.password = username, password
        self.acl, self.dynsec = acl, dynsec
        self.ca_file: str | None = None
        self.client_password_file: str | None = None  # the password alone, mode 0600, for clients
        self.log_file = self.dir / "mosquitto.log"
        self.conf_file = self.dir / "mosquitto.conf"
        self.process: subprocess.Popen | None = None
        self._write_config()

    # -- setup ---------------------------------------------------------------------------------

    def _write_config(self) -> None:
        lines = [f"listener {self.port} {self.host}", f"log_dest file {self.log_file}",
                 "log_type error", "log_type warning", "log_type notice", "log_type information",
                 "connection_messages true", f"persistence {'true' if self.persistence else 'false'}"]
        if self.persistence:
            lines += [f"persistence_location {self.dir}/"]
        if os.geteuid() == 0:
            lines.append("user root")  # else mosquitto drops to user `mosquitto`, who cannot read tmp dirs
        if self.tls:
            lines += self._tls_lines()
        if self.username:
            lines += [f"password_file {self._password_file()}", "allow_anonymous false"]
        else:
            lines.append("allow_anonymous true")
        if self.acl:
            (self.dir / "acl").write_text(self.acl)
            lines.append(f"acl_file {self.dir / 'acl'}")
        if self.dynsec is not None:
            plugin = next((p for p in DYNSEC_PLUGINS if Path(p).exists()), DYNSEC_PLUGINS[0])
            (self.dir / "dynsec.json").write_text(json.dumps(self.dynsec))
            lines += [f"plugin {plugin}", f"plugin_opt_config_file {self.dir / 'dynsec.json'}"]
        self.conf_file.write_text("\n".join(lines) + "\n")

    def _tls_lines(self) -> list[str]:
        ca_cert, ca_key = make_ca(self.dir)
        cert, key = make_server_cert(self.dir, ca_cert, ca_key)
        self.ca_file = str(ca_cert)
        return [f"cafile {ca_cert}", f"certfile {cert}", f"keyfile {key}", "tls_version tlsv1.2"]

    def _password_file(self) -> Path:
        path = self.dir / "passwd"
        _run(MOSQUITTO_PASSWD, "-b", "-c", str(path), self.username, self.password, cwd=self.dir)
        secret = self.dir / "client_password"
        secret.write_text(self.password + "\n")
        secret.chmod(0o600)
        self.client_password_file = str(secret)
        return path

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> Mosquitto:
        if self.running:
            raise RuntimeError("mosquitto is already running")
        log_start = self.log_file.stat().st_size if self.log_file.exists() else 0
        self.process = subprocess.Popen([MOSQUITTO, "-c", str(self.conf_file)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._wait_running(log_start, timeout)
        return self

    def _wait_running(self, log_start: int, timeout: float) -> None:
        # The port accepting is not proof: another process may hold it. Mosquitto logs "running"
        # only after all its listeners are open.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode(errors="replace")
                raise RuntimeError(f"mosquitto exited with {self.process.returncode} before listening on "
                                   f"{self.host}:{self.port}: {err.strip()}\n{self._log_since(log_start)}")
            if " running" in self._log_since(log_start) and self._accepts():
                return
            time.sleep(0.02)
        self.kill()
        raise RuntimeError(f"mosquitto did not listen on {self.host}:{self.port} within {timeout}s\n"
                           f"{self._log_since(log_start)}")

    def _accepts(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.2):
                return True
        except OSError:
            return False

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 5.0) -> None:
        """Graceful: SIGTERM (saves retained messages when persistence is on)."""
        self._end(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """Abrupt: SIGKILL, as in a crash or a power cut."""
        self._end(signal.SIGKILL, 5.0)

    def restart(self) -> Mosquitto:
        self.stop()
        return self.start()

    def _end(self, sig: int, timeout: float) -> None:
        if not self.running:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self.process.stderr.close()

    def log_text(self) -> str:
        return self._log_since(0)

    def _log_since(self, offset: int) -> str:
        if not self.log_file.exists():
            return ""
        with self.log_file.open("rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")

    # -- clients -------------------------------------------------------------------------------

    def configure(self, client: mqtt.Client, *, ca_file: str | None = None) -> mqtt.Client:
        """Apply this broker's TLS and credentials to a paho client (ca_file overrides the CA)."""
        if self.tls:
            client.tls_set(ca_certs=ca_file or self.ca_file)
        if self.username:
            client.username_pw_set(self.username, self.password)
        return client

    def __repr__(self) -> str:
        return f"Mosquitto({self.host}:{self.port}, tls={self.tls}, auth={bool(self.username)}, running={self.running})"


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    qos: int
    retain: bool

    @property
    def text(self) -> str:
        return self.payload.decode("utf-8")

    def json(self) -> Any:
        return json.loads(self.payload)


class Subscriber:
    """A paho client that records every message per topic; use as a context manager."""

    def __init__(self, broker: Mosquitto, topics: Iterable[str] = ("#",), qos: int = 1,
                 client_id: str = "", protocol: int = mqtt.MQTTv311):
        self.broker, self.topics, self.qos = broker, tuple(topics), qos
        self.messages: dict[str, list[Message]] = {}
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2,
                                  client_id=client_id or f"test-sub-{secrets.token_hex(4)}", protocol=protocol)
        broker.configure(self.client)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.on_message = self._on_message

    def start(self, timeout: float = 5.0) -> Subscriber:
        self.client.connect(self.broker.host, self.broker.port, keepalive=30)
        self.client.loop_start()
        if not self._subscribed.wait(timeout):
            self.stop()
            raise TimeoutError(f"subscriber got no SUBACK from {self.broker} within {timeout}s")
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self) -> Subscriber:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if not reason_code.is_failure:
            client.subscribe([(t, self.qos) for t in self.topics])

    def _on_message(self, client, userdata, msg) -> None:
        with self._cond:
            self.messages.setdefault(msg.topic, []).append(Message(msg.topic, msg.payload, msg.qos, bool(msg.retain)))
            self._cond.notify_all()

    def wait_for(self, topic: str, predicate: Callable[[Message], bool] | None = None,
                 timeout: float = 5.0) -> Message:
        """The first message on `topic` (already received or arriving within `timeout`) that matches."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for m in self.messages.get(topic, []):
                    if predicate is None or predicate(m):
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [(m.payload[:80], m.retain) for m in self.messages.get(topic, [])]
                    raise AssertionError(f"no matching message on {topic!r} within {timeout}s; "
                                         f"seen there: {seen}; topics seen: {sorted(self.messages)}")
                self._cond.wait(left)

    def clear(self) -> None:
        with self._cond:
            self.messages.clear()


def publish(broker: Mosquitto, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False,
            timeout: float = 5.0) -> None:
    """Publish one message and wait until the broker has it (PUBACK for QoS 1)."""
    client = broker.configure(mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-pub-{secrets.token_hex(4)}"))
    client.connect(broker.host, broker.port, keepalive=30)
    client.loop_start()
    try:
        client.publish(topic, payload, qos=qos, retain=retain).wait_for_publish(timeout)
    finally:
        client.disconnect()
        client.loop_stop()
