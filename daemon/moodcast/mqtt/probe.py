"""One connection to the broker as the daemon would make it, for `check-config --online`: the name,
TCP, TLS and the CONNACK are tried in turn, and the first that fails is named with its likely cause.

A problem only the configuration (or a secret) can mend raises ConfigError (exit 78); a broker that
is down, refusing or silent raises ServiceUnavailable (exit 69).
"""

from __future__ import annotations

import socket
import ssl
import threading
import time

from moodcast.config import ConfigError, MqttConfig
from moodcast.errors import ServiceUnavailable
from moodcast.mqtt.link import connect_properties, make_client, speaks_tls, ssl_context

LOGIN_REFUSED = {134: "Bad user name or password", 135: "Not authorized"}  # MQTT 5 codes (3.1.1's 4 and 5)
BROKER_BUSY = {136, 137}  # server unavailable, server busy: try again later


def try_broker(cfg: MqttConfig, client_id: str, timeout_s: float) -> str:
    """Connect and log in once; what worked, in a few words, or the exception that says what did not."""
    where = f"{cfg.host}:{cfg.port}"
    client = make_client(cfg, client_id, ssl_context(cfg) if cfg.tls.enabled else None)
    client.connect_timeout = timeout_s
    answered, outcome = threading.Event(), []

    def on_connect(_c, _u, _f, reason_code, _p) -> None:
        outcome.append(reason_code)
        answered.set()
    client.on_connect = on_connect
    client.on_disconnect = lambda *_: answered.set()  # closed before a CONNACK
    start = time.monotonic()
    _open(client, cfg, where, timeout_s)
    client.loop_start()
    try:
        closed = answered.wait(timeout_s) and not outcome  # before our own disconnect sets it too
    finally:
        client.disconnect()
        client.loop_stop()
    if not outcome:
        raise _silence(cfg, where, timeout_s, closed)
    code = outcome[0]
    if code.is_failure:
        raise _refusal(cfg, where, code)
    login = f' as "{cfg.username}"' if cfg.username else " (anonymous)"
    return f"connected{login}{' over TLS' if cfg.tls.enabled else ''} in {(time.monotonic() - start) * 1000:.0f} ms"


def _open(client, cfg: MqttConfig, where: str, timeout_s: float) -> None:
    """The name lookup, TCP connection, TLS handshake and CONNECT (paho does them all in connect())."""
    try:
        client.connect(cfg.host, cfg.port, keepalive=cfg.keepalive_s, properties=connect_properties(cfg))
    except socket.gaierror as e:
        if e.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)):
            raise ConfigError(f'[mqtt] host: no such host name "{cfg.host}" (a typo? with Home Assistant\'s '
                              "add-on: homeassistant.local or its IP address)") from None
        raise ServiceUnavailable(f"broker {where}: cannot look up the name ({e.strerror})") from None
    except ssl.SSLCertVerificationError as e:
        raise ConfigError(f"[mqtt.tls]: the certificate of {where} is not accepted ({e.verify_message}): ca_file "
                          "must name the CA that signed it, and [mqtt] host a name it lists") from None
    except ssl.SSLError as e:
        raise ConfigError(f"[mqtt.tls] enabled: the TLS handshake with {where} failed ({e.reason or e}): "
                          "is this the broker's TLS port?") from None
    except ConnectionRefusedError:
        raise ServiceUnavailable(f"broker {where} refused the connection: nothing listens there (broker stopped, "
                                 "or the wrong [mqtt] port)") from None
    except TimeoutError:
        raise ServiceUnavailable(f"broker {where}: no answer within {timeout_s:g} s (a firewall, or the wrong "
                                 "address?)") from None
    except OSError as e:
        raise ServiceUnavailable(f"broker {where}: {e.strerror or e}") from None


def _silence(cfg: MqttConfig, where: str, timeout_s: float, closed: bool) -> Exception:
    """No CONNACK: a TLS port hangs up on a plain CONNECT; other hang-ups and silence are the broker's own."""
    if closed and not cfg.tls.enabled and speaks_tls(cfg.host, cfg.port):
        return ConfigError(f"[mqtt.tls] enabled: {where} expects TLS: set [mqtt.tls] enabled = true (and ca_file), "
                           "or use the broker's plain MQTT port")
    if closed:
        return ServiceUnavailable(f"broker {where} closed the connection without answering the login (see the "
                                  "broker's log)")
    return ServiceUnavailable(f"broker {where} took the connection but sent no answer within {timeout_s:g} s: "
                              "not an MQTT broker?")


def _refusal(cfg: MqttConfig, where: str, code) -> Exception:
    if code.value in LOGIN_REFUSED:
        who = f'[mqtt] username "{cfg.username}" and the mqtt_password secret' if cfg.username else \
            "[mqtt] username: the broker wants a login"
        return ConfigError(f"broker {where} refused the login ({code}): check {who}")
    if code.value in BROKER_BUSY:
        return ServiceUnavailable(f"broker {where} refused the connection for now ({code})")
    return ConfigError(f"broker {where} refused the connection ({code}): check [mqtt] protocol and client_id")
