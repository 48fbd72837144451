"""The MQTT link: paho 2 with a last will, retained state that survives broker outages, commands in.

Everything goes out through the Outbox (moodcast.mqtt.outbox): retained topics keep only their newest
payload (re-published on reconnect and when Home Assistant restarts) and always end on it; events
and stats are bounded, and dropped and counted while the broker is away or the backlog is full.
paho reconnects by itself with bounded backoff; failures are logged once per distinct reason, with
a diagnosis (refused, TLS, auth) instead of silence.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from moodcast.config import ConfigError, MqttConfig
from moodcast.logs import RateLimitedLog
from moodcast.mqtt import homeassistant, payloads
from moodcast.mqtt.commands import Incoming
from moodcast.mqtt.outbox import RETRY_REFUSED_S, Outbox, Outgoing
from moodcast.secrets import read_secret
from moodcast.topics import Topics
from moodcast.util import NotARegularFile, check_regular

log = logging.getLogger("moodcast.mqtt")
# The largest packet the daemon takes from the broker. A command is at most 256 bytes and moodcast's
# own messages stay under 8 KB; without a bound, paho reads a 256 MB message whole before the daemon
# can refuse it (RSS 184 -> 950 MB). Under MQTT 5 the broker must not send more (it drops it for us).
MAX_INCOMING_PACKET = 64 * 1024


class MqttLink:
    def __init__(self, cfg: MqttConfig, topics: Topics, on_command: Callable[[Incoming], None]):
        self.cfg, self.topics, self.on_command = cfg, topics, on_command
        self.connected = threading.Event()
        self.reconnects = 0
        self.outbox = Outbox(self._send, topics.of("availability"), payloads.ONLINE.encode())
        self._ever_connected = False
        self._last_problem = ""
        self._connected_at = 0.0
        self._answered = False  # a CONNACK (accepting or refusing) came for this connection attempt
        self._last_loss = ("", 0.0)  # (text, when): a flapping connection is logged once a minute
        self._ssl_context = ssl_context(cfg) if cfg.tls.enabled else None
        self._subscribing: dict[int, list[tuple[str, int]]] = {}  # SUBSCRIBE mid -> its (topic, qos) list
        self._early_subacks: dict[int, list] = {}  # SUBACK reason codes that came before the mid was recorded
        self._subscribe_lock = threading.Lock()  # for these two only: never held while calling paho
        self._subscriptions_refused = 0
        self._refused_subscriptions: set[str] = set()  # logged once each
        self._resubscribe: threading.Timer | None = None
        self._limited = RateLimitedLog(log, interval_s=60.0)  # for what the broker's other clients can trigger
        self.client = self._make_client()

    def _make_client(self) -> paho.Client:
        self.client_id = self.cfg.client_id or f"moodcast-{self.topics.device_id}"
        client = make_client(self.cfg, self.client_id, self._ssl_context)
        client.will_set(self.topics.of("availability"), payloads.OFFLINE, qos=1, retain=True)
        # paho annotates whole seconds, but its backoff is float arithmetic: 0.2 s works, and the tests use it
        client.reconnect_delay_set(self.cfg.reconnect_min_s, self.cfg.reconnect_max_s)  # type: ignore[arg-type]
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        client.on_subscribe = self._on_subscribe
        return client

    def start(self) -> None:
        """Returns at once; the connection is made (and remade) in paho's thread."""
        self.outbox.start()
        self.client.connect_async(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive_s,
                                  properties=connect_properties(self.cfg))
        self.client.loop_start()

    def stop(self, timeout: float = 2.0) -> None:
        """Send what is queued, say `offline` (a clean exit sends no last will) and disconnect."""
        self.outbox.flush(timeout)
        self.outbox.close()
        if self._resubscribe:
            self._resubscribe.cancel()
        if self.connected.is_set():
            info = self.client.publish(self.topics.of("availability"), payloads.OFFLINE, qos=1, retain=True)
            try:
                info.wait_for_publish(timeout)
            except (RuntimeError, ValueError):
                pass
        self.client.disconnect()
        self.client.loop_stop()

    def publish(self, kind: str, payload: dict) -> None:
        spec = payloads.TOPICS[kind]
        self.publish_raw(self.topics.of(kind), payloads.encode(payload), spec.qos, spec.retain)

    def publish_raw(self, topic: str, data: bytes, qos: int = 1, retain: bool = True) -> None:
        """Thread-safe and never blocks; see moodcast.mqtt.outbox for what is kept and what is dropped."""
        self.outbox.put(Outgoing(topic, data, qos, retain))

    @property
    def dropped(self) -> int:
        """Events and stats that never reached the broker (away, or the backlog was full)."""
        return self.outbox.dropped

    @property
    def denied(self) -> int:
        """Publishes and subscriptions the broker refused (MQTT 5 reason codes; SUBACK failures under 3.1.1 too)."""
        return self.outbox.refused + self._subscriptions_refused

    def _send(self, message: Outgoing) -> paho.MQTTMessageInfo:
        return self.client.publish(message.topic, message.data, qos=message.qos, retain=message.retain)

    # paho callbacks (paho's network thread: keep them short)
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        self._answered = True
        if reason_code.is_failure:
            self._problem(f"broker {self.cfg.host}:{self.cfg.port} refused the connection: {reason_code}")
            return
        if self._ever_connected:
            self.reconnects += 1
        self._ever_connected = True
        self._last_problem = ""
        self._connected_at = time.monotonic()
        log.info("connected to %s:%d; publishing under %s/", self.cfg.host, self.cfg.port, self.topics.base)
        # set/# at QoS 0: the session is clean, so QoS 1 would only add the broker's per-client queue, and
        # Mosquitto drops the newest messages beyond it (max_queued_messages): the last command of a burst.
        self._subscribe([(self.topics.commands, 0), (self.topics.ha_status, 1)])
        self.outbox.connected()  # first: whoever sees `connected` may publish an event at once
        self.connected.set()

    def _subscribe(self, topics: list[tuple[str, int]]) -> None:
        """paho's thread (on_connect) or the retry timer's: the SUBACK may be handled before this returns."""
        result, mid = self.client.subscribe(topics)
        if result != paho.MQTT_ERR_SUCCESS or mid is None:
            return  # not connected: the next on_connect subscribes again
        with self._subscribe_lock:
            early = self._early_subacks.pop(mid, None)
            if early is None:
                self._subscribing[mid] = topics
        if early is not None:
            self._subscribed(topics, early)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        with self._subscribe_lock:
            topics = self._subscribing.pop(mid, None)
            if topics is None:
                self._early_subacks[mid] = reason_codes
        if topics is not None:
            self._subscribed(topics, reason_codes)

    def _subscribed(self, topics: list[tuple[str, int]], reason_codes: list) -> None:
        """A SUBACK: a refused subscription (an ACL) means deaf to commands. Said once per topic, counted,
        and asked for again every RETRY_REFUSED_S (and on every reconnect) until the broker allows it."""
        refused = [(topic, code) for (topic, qos), code in zip(topics, reason_codes, strict=False) if code.is_failure]
        for topic, code in refused:
            self._subscriptions_refused += 1
            if topic not in self._refused_subscriptions:
                self._refused_subscriptions.add(topic)
                log.error("the broker refused the subscription to %s: %s (reason code %d); %s. Check its ACL for "
                          "this client; asking again every %g s", topic, code, code.value,
                          "commands cannot arrive" if topic == self.topics.commands else "Home Assistant restarts "
                          "go unnoticed", RETRY_REFUSED_S)
        if refused:
            retry = [(topic, qos) for topic, qos in topics if topic in dict(refused)]
            self._resubscribe = threading.Timer(RETRY_REFUSED_S, self._subscribe_again, (retry,))
            self._resubscribe.daemon = True
            self._resubscribe.start()

    def _subscribe_again(self, topics: list[tuple[str, int]]) -> None:
        if self.connected.is_set():  # else the next on_connect subscribes to everything anyway
            self._subscribe(topics)

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        # only MQTT 5 says why: a 3.1.1 broker acknowledges a refused publish like any other (or drops us)
        self.outbox.acknowledged(mid, f"{reason_code} (reason code {reason_code.value})" if reason_code.is_failure
                                 else "")

    def _on_connect_fail(self, client, userdata) -> None:
        self._problem(f"cannot connect to {self.cfg.host}:{self.cfg.port}: {self._diagnose()}")

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        was_connected = self.connected.is_set()
        self.connected.clear()
        self.outbox.disconnected()
        answered, self._answered = self._answered, False
        if not was_connected and not answered:  # closed before CONNACK: TLS expected, not MQTT, a bad will...
            self._problem(f"cannot connect to {self.cfg.host}:{self.cfg.port}: no answer to CONNECT "
                          f"({reason_code}): {self._diagnose_silence(reason_code)}")
        elif reason_code != 0:
            self._lost(str(reason_code), time.monotonic() - self._connected_at)

    def _lost(self, reason: str, lasted_s: float) -> None:
        text = f"connection to {self.cfg.host}:{self.cfg.port} lost ({reason})"
        if reason == "Session taken over":  # MQTT 5 says so
            text += f": another client with this client_id ({self.client_id}) took over"
        elif lasted_s < 10:  # MQTT 3.1.1 only drops the socket; a second client with our id does it every few s
            text += (f" within seconds of connecting: is another client using client_id {self.client_id} "
                     "(the same [mqtt] device_id on two devices)?")
        now = time.monotonic()
        if text != self._last_loss[0] or now - self._last_loss[1] > 60:
            log.warning("%s; reconnecting", text)
            self._last_loss = (text, now)
        else:
            log.debug(text)

    def _on_message(self, client, userdata, message) -> None:
        if homeassistant.is_ha_online(message.topic, message.payload, self.topics):
            # 10,000 birth messages wrote 3,698 lines: said at most once a minute, re-published every time
            self._limited.info("ha-online", "Home Assistant came online: re-publishing discovery and state")
            self.outbox.refresh()
        elif (name := self.topics.command_name(message.topic)) is not None:
            self.on_command(Incoming.cut(name, message.payload))

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

    def _diagnose_silence(self, reason_code) -> str:
        """The port took the connection but the MQTT handshake never finished: find out why."""
        if not self._ssl_context and speaks_tls(self.cfg.host, self.cfg.port):
            return "the port expects TLS: set [mqtt.tls] enabled = true (and ca_file), or use the plain MQTT port"
        if "keep alive" in str(reason_code).lower():
            return (f"the server accepted the connection but sent no CONNACK within {self.cfg.keepalive_s} s: "
                    "not an MQTT broker?")
        return "the server closed the connection (a protocol or TLS mismatch, or a topic it refused: see its log)"


def speaks_tls(host: str, port: int) -> bool:
    """Whether a TLS handshake (certificate unchecked: this only tells the protocol) succeeds."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    try:
        with socket.create_connection((host, port), timeout=3) as sock, context.wrap_socket(sock):
            return True
    except (OSError, ssl.SSLError):
        return False


def make_client(cfg: MqttConfig, client_id: str = "", context: ssl.SSLContext | None = None) -> paho.Client:
    """A paho 2 client with the configured protocol, credentials and TLS (not yet connected)."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=paho.MQTTv5 if cfg.protocol == "5" else paho.MQTTv311)
    if cfg.username:
        client.username_pw_set(cfg.username, read_secret("mqtt_password", cfg.password_file))
    if cfg.tls.enabled:
        client.tls_set_context(context or ssl_context(cfg))
    return client


def connect_properties(cfg: MqttConfig) -> Properties | None:
    """MQTT 5 CONNECT properties: the Maximum Packet Size we accept (MQTT 3.1.1 has no way to say it:
    there only the broker's own max_packet_size bounds what arrives, see docs/install.md)."""
    if cfg.protocol != "5":
        return None
    properties = Properties(PacketTypes.CONNECT)
    properties.MaximumPacketSize = MAX_INCOMING_PACKET
    return properties


def ssl_context(cfg: MqttConfig) -> ssl.SSLContext:
    tls = cfg.tls
    for key in ("ca_file", "cert_file", "key_file"):  # OpenSSL would wait on a FIFO for ever
        if getattr(tls, key):
            _regular_file(f"[mqtt.tls] {key}", getattr(tls, key))
    try:
        context = ssl.create_default_context(cafile=tls.ca_file or None)
    except (OSError, ssl.SSLError) as e:
        reason = getattr(e, "strerror", None) or e
        raise ConfigError(f"[mqtt.tls] ca_file: cannot load {tls.ca_file!r}: {reason}") from None
    try:
        if tls.cert_file:
            context.load_cert_chain(tls.cert_file, tls.key_file or None)
    except (OSError, ssl.SSLError) as e:
        reason = getattr(e, "strerror", None) or e
        raise ConfigError(f"[mqtt.tls] cert_file/key_file: cannot load {tls.cert_file!r}: {reason}") from None
    if tls.insecure:
        context.check_hostname = False
    return context


def _regular_file(key: str, path: str) -> None:
    try:
        check_regular(path)
    except NotARegularFile as e:
        raise ConfigError(f"{key}: {path}: {e}") from None
    except OSError:
        pass  # missing or unreadable: OpenSSL's own error says which, below
