"""The running daemon: the frame loop (daemon), the stable mood (tracker), runtime settings, systemd
notification, early signals, memory housekeeping (heap) and the pipeline's numbers (stats)."""
