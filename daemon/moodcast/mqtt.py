"""The MQTT link: paho 2 with a last will, retained state that survives broker outages, commands in.

While the broker is away nothing queues up: retained topics keep only their newest payload
(re-published on reconnect and when Home Assistant restarts), events and stats are dropped and
counted. paho reconnects by itself with bounded backoff; failures are logged once per distinct
reason, with a diagnosis (refused, TLS, auth) instead of silence.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from typing import Callable

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from moodcast import homeassistant, payloads
from moodcast.config import ConfigError, MqttConfig
from moodcast.secrets import read_secret

log = logging.getLogger("moodcast.mqtt")


class MqttLink:
    def __init__(self, cfg: MqttConfig, device_id: str, on_command: Callable[[str, bytes], None]):
        self.cfg, self.on_command = cfg, on_command
        self.base = payloads.base_topic(cfg.prefix, device_id)
        self.connected = threading.Event()
        self.reconnects = 0
        self.dropped_while_offline = 0
        self._retained: dict[str, tuple[bytes, int]] = {}
        self._lock = threading.Lock()
        self._ever_connected = False
        self._last_problem = ""
        self._ssl_context = ssl_context(cfg) if cfg.tls.enabled else None
        self.client = self._make_client(device_id)

    def topic(self, kind: str) -> str:
        return f"{self.base}/{kind}"

    def _make_client(self, device_id: str) -> paho.Client:
        client = make_client(self.cfg, self.cfg.client_id or f"moodcast-{device_id}", self._ssl_context)
        client.will_set(self.topic("availability"), payloads.OFFLINE, qos=1, retain=True)
        client.reconnect_delay_set(self.cfg.reconnect_min_s, self.cfg.reconnect_max_s)
        client.max_queued_messages_set(100)  # bounds paho's own queue if a publish races a disconnect
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def start(self) -> None:
        """Returns at once; the connection is made (and remade) in paho's thread."""
        self.client.connect_async(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive_s)
        self.client.loop_start()

    def stop(self, timeout: float = 2.0) -> None:
        """Say `offline` (a clean exit sends no last will) and disconnect."""
        if self.connected.is_set():
            info = self.client.publish(self.topic("availability"), payloads.OFFLINE, qos=1, retain=True)
            try:
                info.wait_for_publish(timeout)
            except (RuntimeError, ValueError):
                pass
        self.client.disconnect()
        self.client.loop_stop()

    def publish(self, kind: str, payload: dict) -> None:
        spec = payloads.TOPICS[kind]
        self.publish_raw(self.topic(kind), payloads.encode(payload), spec.qos, spec.retain)

    def publish_raw(self, topic: str, data: bytes, qos: int = 1, retain: bool = True) -> None:
        """Thread-safe. Retained payloads are remembered (newest only) for re-publishing."""
        if retain:
            with self._lock:
                self._retained[topic] = (data, qos)
        if self.connected.is_set():
            self.client.publish(topic, data, qos=qos, retain=retain)
        elif not retain:
            self.dropped_while_offline += 1

    def _republish(self) -> None:
        """Retained state first, `online` last: one connection keeps order, so whoever sees
        `online` finds the current state already retained at the broker."""
        with self._lock:
            retained = list(self._retained.items())
        for topic, (data, qos) in retained:
            self.client.publish(topic, data, qos=qos, retain=True)
        self.client.publish(self.topic("availability"), payloads.ONLINE, qos=1, retain=True)

    # paho callbacks (paho's network thread: keep them short)
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self._problem(f"broker {self.cfg.host}:{self.cfg.port} refused the connection: {reason_code}")
            return
        if self._ever_connected:
            self.reconnects += 1
        self._ever_connected = True
        self._last_problem = ""
        log.info("connected to %s:%d; publishing under %s/", self.cfg.host, self.cfg.port, self.base)
        client.subscribe([(f"{self.base}/{payloads.COMMAND_LEVEL}/+", 1),
                          (homeassistant.status_topic(self.cfg.discovery_prefix), 1)])
        self.connected.set()
        self._republish()

    def _on_connect_fail(self, client, userdata) -> None:
        self._problem(f"cannot connect to {self.cfg.host}:{self.cfg.port}: {self._diagnose()}")

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        was_connected = self.connected.is_set()
        self.connected.clear()
        if was_connected and reason_code != 0:
            log.warning("connection to %s:%d lost (%s); reconnecting", self.cfg.host, self.cfg.port, reason_code)

    def _on_message(self, client, userdata, message) -> None:
        if homeassistant.is_ha_online(message.topic, message.payload, self.cfg.discovery_prefix):
            log.info("Home Assistant came online: re-publishing discovery and state")
            self._republish()
        elif message.topic.startswith(f"{self.base}/{payloads.COMMAND_LEVEL}/"):
            self.on_command(message.topic.rsplit("/", 1)[1], message.payload)

    def _problem(self, text: str) -> None:
        """Log a connection problem once; the same problem on every retry goes to debug."""
        if text != self._last_problem:
            log.error("%s; retrying (every %g–%g s)", text, self.cfg.reconnect_min_s, self.cfg.reconnect_max_s)
            self._last_problem = text
        else:
            log.debug(text)

    def _diagnose(self) -> str:
        """paho does not say why a connect failed; try once ourselves to find out."""
        try:
            with socket.create_connection((self.cfg.host, self.cfg.port), timeout=3) as sock:
                if self._ssl_context:
                    with self._ssl_context.wrap_socket(sock, server_hostname=self.cfg.host):
                        pass
            return "the broker accepted a test connection; see debug log"
        except ssl.SSLError as e:
            return f"TLS failed: {e.reason or e}"
        except OSError as e:
            return e.strerror or str(e)


def make_client(cfg: MqttConfig, client_id: str = "", context: ssl.SSLContext | None = None) -> paho.Client:
    """A paho 2 client with the configured protocol, credentials and TLS (not yet connected)."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=paho.MQTTv5 if cfg.protocol == "5" else paho.MQTTv311)
    if cfg.username:
        client.username_pw_set(cfg.username, read_secret("mqtt_password", cfg.password_file))
    if cfg.tls.enabled:
        client.tls_set_context(context or ssl_context(cfg))
    return client


def ssl_context(cfg: MqttConfig) -> ssl.SSLContext:
    tls = cfg.tls
    try:
        context = ssl.create_default_context(cafile=tls.ca_file or None)
    except (OSError, ssl.SSLError) as e:
        raise ConfigError(f"[mqtt.tls] ca_file: cannot load {tls.ca_file!r}: {getattr(e, 'strerror', None) or e}") from None
    try:
        if tls.cert_file:
            context.load_cert_chain(tls.cert_file, tls.key_file or None)
    except (OSError, ssl.SSLError) as e:
        raise ConfigError(f"[mqtt.tls] cert_file/key_file: cannot load {tls.cert_file!r}: {getattr(e, 'strerror', None) or e}") from None
    if tls.insecure:
        context.check_hostname = False
    return context
