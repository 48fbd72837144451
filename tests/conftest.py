from tests.broker import mosquitto, mosquitto_tls  # noqa: F401
