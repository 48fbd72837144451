"""The MQTT side: the payload contract (payloads, schemas/), Home Assistant discovery, commands in,
the link to the broker (link, outbox, publisher) and an embedded broker for the demo."""
