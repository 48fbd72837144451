"""The `moodcast` command line: run, check-config, preview, watch, demo, calibrate, mqtt-cleanup, set-config,
recommend, spotify-auth."""

from __future__ import annotations

import sys

from moodcast.service import signals

# `moodcast run` notes SIGINT, SIGTERM and SIGHUP before anything else is imported (argparse and
# logging take milliseconds, LiteRT and OpenCV seconds on a Pi): a Ctrl-C or a reload asked for
# meanwhile must not print a KeyboardInterrupt traceback or kill the process (SIGHUP's default
# action). main() turns them into requests the daemon carries out (service/signals.py).
if sys.argv[1:2] == ["run"]:
    signals.remember()

import argparse  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import threading  # noqa: E402
from pathlib import Path  # noqa: E402

from moodcast import __version__  # noqa: E402
from moodcast.errors import EX_CONFIG, MoodcastError, exit_code  # noqa: E402
from moodcast.service.signals import EarlySignals  # noqa: E402


def default_config_path() -> str:
    """$MOODCAST_CONFIG, else /etc/moodcast/config.toml when installed, else ./config.toml."""
    if os.environ.get("MOODCAST_CONFIG"):
        return os.environ["MOODCAST_CONFIG"]
    return "/etc/moodcast/config.toml" if Path("/etc/moodcast/config.toml").exists() else "config.toml"


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-c", "--config", default=None, metavar="FILE",
                        help="configuration file (default: $MOODCAST_CONFIG, /etc/moodcast/config.toml "
                             "or ./config.toml)")
    parser = argparse.ArgumentParser(prog="moodcast",
                                     description="Facial emotion -> MQTT, music and videos, on the device.")
    parser.add_argument("--version", action="version", version=f"moodcast {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", parents=[common], help="run the daemon (foreground; systemd runs this)")
    p.add_argument("--replay", metavar="PATH", help="analyse a video, image or directory instead of the camera")
    p.add_argument("--fast", action="store_true", help="with --replay: as fast as possible, not in real time")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("check-config", parents=[common], help="validate the configuration, model, detector and secrets")
    p.add_argument("--strict", action="store_true", help="warnings fail too (exit 78), e.g. a webcam that is not there")
    p.add_argument("--online", action="store_true",
                   help="also try the broker, Spotify and YouTube (a few seconds each); exit 69 if one cannot be "
                        "reached, 78 if the configuration is refused")
    p.set_defaults(func=cmd_check_config)

    p = sub.add_parser("preview", parents=[common],
                       help="grab one frame, draw faces and scores, save a JPEG (local only)")
    p.add_argument("-o", "--output", default="moodcast-preview.jpg", help="where to save (default: %(default)s)")
    p.add_argument("--replay", metavar="PATH", help="use this image or video instead of the camera")
    p.set_defaults(func=cmd_preview)

    p = sub.add_parser("watch", parents=[common], help="show what the daemon publishes, live and readable")
    p.add_argument("--host", help="broker host (default: from the configuration)")
    p.add_argument("--port", type=int, help="broker port (default: from the configuration)")
    p.add_argument("--all", action="store_true", help="every moodcast device under the prefix, not just this one")
    p.set_defaults(func=cmd_watch)

    p = sub.add_parser("demo", parents=[common],
                       help="run on the bundled sample faces with an embedded broker, and watch")
    p.add_argument("--duration", type=float, default=0, help="stop after this many seconds (default: run until Ctrl-C)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("calibrate", parents=[common],
                       help="learn the household's resting face (by the running service, or --camera here)")
    p.add_argument("--reset", action="store_true", help="forget the stored calibration instead")
    p.add_argument("--camera", action="store_true",
                   help="calibrate in this process with the camera (the service must be stopped: it holds it)")
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("mqtt-cleanup", parents=[common],
                       help="remove this device's Home Assistant entities and retained topics")
    p.add_argument("--force", action="store_true",
                   help="even while the device's availability topic says online (a running daemon publishes again)")
    p.set_defaults(func=cmd_mqtt_cleanup)

    p = sub.add_parser("set-config", parents=[common],
                       help="change settings in the configuration file, its comments kept (sudo for the installed "
                            "one), e.g. set-config -c /etc/moodcast/config.toml spotify.device_name=Kitchen")
    p.add_argument("settings", nargs="+", metavar="TABLE.KEY=VALUE",
                   help="a setting of a [table]: text as it is, true/false, or a number")
    p.set_defaults(func=cmd_set_config)

    from moodcast.cli.recommend import add_commands
    add_commands(sub, parents=[common])
    for command in sub.choices.values():  # after each command's own positionals: `recommend happy FILE`
        command.add_argument("config_file", nargs="?", metavar="FILE", help="configuration file (same as -c FILE)")
        command.set_defaults(command_parser=command)
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Like parse_args, but a stray argument is reported with the subcommand's usage, not the top level's."""
    args, extra = build_parser().parse_known_args(argv)
    command = args.command_parser
    if len(extra) == 1 and not extra[0].startswith("-") and not args.config_file:
        args.config_file, extra = extra[0], []  # `recommend happy --play FILE`: argparse gave FILE up too early
    if extra:
        command.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.config and args.config_file and args.config != args.config_file:
        command.error(f"two configuration files given: -c {args.config} and {args.config_file}")
    args.config = args.config or args.config_file
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    args.signals = EarlySignals.install() if args.func is cmd_run else None
    try:
        return args.func(args, None if args.func in (cmd_demo,) else load_config(args))
    except MoodcastError as e:
        print(f"moodcast: {e}", file=sys.stderr)
        return exit_code(e)
    except KeyboardInterrupt:
        return 130


def load_config(args):
    from moodcast import config

    path = args.config or default_config_path()
    if not args.config and not os.environ.get("MOODCAST_CONFIG") and not Path(path).exists():
        # outside a checkout, "config.toml: no such file" would not say that a file can be named
        raise config.ConfigError(f"no configuration file: none given, $MOODCAST_CONFIG is not set, and neither "
                                 f"/etc/moodcast/config.toml nor ./config.toml exists; name one: moodcast "
                                 f"{args.command} -c FILE (the reference config.toml is in the moodcast checkout)")
    return config.load(path, overrides(args))


def overrides(args: argparse.Namespace) -> dict[str, dict]:
    """What the command line changes, merged into the file's data before validation (`watch --port 0` is refused)."""
    if getattr(args, "replay", None) and args.func in (cmd_run, cmd_preview):
        camera: dict = {"source": "replay", "path": args.replay}
        if args.func is cmd_run:
            camera["realtime"] = not args.fast
        return {"camera": camera}
    if args.func is cmd_set_config:  # the file with the new values must be valid before one is written
        from moodcast.cli.set_config import as_overrides, parse_settings
        return as_overrides(parse_settings(args.settings))
    if args.func is cmd_watch:
        mqtt: dict = {"host": args.host} if args.host else {}
        return {"mqtt": {**mqtt, "port": args.port}} if args.port is not None else {"mqtt": mqtt}
    return {}


def cmd_run(args, cfg) -> int:
    from moodcast.cli.checks import check_detector_model
    from moodcast.config import trust_problems
    from moodcast.logs import setup_logging
    from moodcast.service.daemon import Daemon

    if args.fast and not args.replay:
        args.command_parser.error("--fast only applies to --replay PATH")
    check_detector_model(cfg)
    setup_logging(cfg.logging.level)
    for problem in trust_problems(cfg.source_path):
        logging.getLogger("moodcast").warning("%s: whoever can change it can point moodcast at their broker or "
                                              "secrets (moodcast check-config --strict refuses it)", problem)
    daemon = Daemon(cfg, args.signals)
    code = daemon.run()
    if cfg.camera.source == "replay" and not cfg.camera.loop and not daemon.stop_event.is_set():
        logging.getLogger("moodcast").info("replay finished: %d frames analysed from %s", daemon.stats.frames,
                                           cfg.camera.path)
    return code


def cmd_check_config(args, cfg) -> int:
    from moodcast.cli.checks import check_detector_model, check_setup
    from moodcast.secrets import read_secret
    from moodcast.service.calibration import describe as describe_calibration
    from moodcast.vision.classifier import EmotionClassifier
    from moodcast.vision.detector import make_detector

    clf = EmotionClassifier(cfg.model.path or None, cfg.model.num_threads)
    check_detector_model(cfg)
    make_detector(cfg.detector)
    findings = check_setup(cfg)
    print(f"{cfg.source_path}: {_verdict(findings, args.strict)}")
    c = cfg.camera
    where = f"camera {c.index}" if c.source == "picamera2" else c.path or c.pipeline or c.device
    print(f"  camera   {c.source} ({where}), max {c.max_fps:g} fps")
    print(f"  model    {clf.path} ({'int8' if clf.quantized else 'float'}; labels {', '.join(clf.labels)})")
    mqtt = f"{cfg.mqtt.host}:{cfg.mqtt.port} as {cfg.topics.base}" if cfg.mqtt.enabled else "off"
    print(f"  mqtt     {mqtt}")
    print(f"  state    {cfg.state_dir}")
    print(f"  calibration {describe_calibration(clf, cfg.state_dir, cfg.model)}")
    print(f"  spotify  {_spotify_status(cfg)}")
    youtube_key = cfg.youtube.enabled and read_secret("youtube_api_key", cfg.youtube.api_key_file)
    print(f"  youtube  {'API key found' if youtube_key else 'off (no API key)'}", flush=True)
    for f in findings:
        print(f"moodcast: {f.level}: {f.text}", file=sys.stderr)
    failed = any(f.level == "error" for f in findings) or (args.strict and findings)
    online = _check_online(cfg) if args.online else 0
    return EX_CONFIG if failed else online


def _check_online(cfg) -> int:
    from moodcast.cli.online import ATTEMPT_TIMEOUT_S, attempt_all, online_exit_code

    print(f"online (each service tried once, within {ATTEMPT_TIMEOUT_S:g} s):", flush=True)
    attempts = attempt_all(cfg)
    for attempt in attempts:
        print(attempt.line(), flush=True)
    return online_exit_code(attempts)


def _verdict(findings, strict: bool) -> str:
    errors = sum(f.level == "error" for f in findings)
    warnings = f"{len(findings) - errors} warning(s)"
    if errors:
        return f"FAILED: {errors} error(s), {warnings} below"
    if findings:
        return f"FAILED (--strict): {warnings} below" if strict else f"OK, but {warnings} below"
    return "OK"


def _spotify_status(cfg) -> str:
    from moodcast.recommend.spotify_auth import token_path
    from moodcast.secrets import read_secret

    if not (cfg.spotify.enabled and cfg.spotify.client_id):
        return "off (no [spotify] client_id)"
    if not read_secret("spotify_client_secret", cfg.spotify.client_secret_file):
        return "off (no client secret)"
    if not token_path(cfg).exists():
        return f"not authorised yet: run moodcast spotify-auth (token goes to {token_path(cfg)})"
    return f"authorised; autoplay {'on' if cfg.recommendations.autoplay else 'off'}"


def cmd_preview(args, cfg) -> int:
    from moodcast.cli.preview import save_preview

    for line in save_preview(cfg, args.output):
        print(line)
    return 0


def cmd_watch(args, cfg) -> int:
    from moodcast.cli.watch import watch

    topic = cfg.topics.every_device if args.all else cfg.topics.this_device
    print(f"watching {topic} on {cfg.mqtt.host}:{cfg.mqtt.port} (Ctrl-C to stop)", flush=True)
    watch(cfg.mqtt, [topic], threading.Event(), out=lambda line: print(line, flush=True))
    return 0


def cmd_demo(args, _cfg) -> int:
    from moodcast.cli.demo import run_demo

    return run_demo(args.config, args.duration)


def cmd_calibrate(args, cfg) -> int:
    from moodcast.cli import calibrate

    def out(line: str) -> None:
        print(line, flush=True)

    if args.camera:
        return calibrate.with_camera(cfg, args.reset, out)
    if not cfg.mqtt.enabled:
        args.command_parser.error("[mqtt] enabled = false: there is no service to ask; use --camera")
    return calibrate.over_mqtt(cfg, args.reset, out)


def cmd_set_config(args, cfg) -> int:
    from moodcast.cli.set_config import listed, parse_settings, switch_notes
    from moodcast.config_edit import set_values

    changes = parse_settings(args.settings)
    set_values(cfg.source_path, changes)
    print(f"{cfg.source_path}: set {listed(changes)}, comments and layout kept. If moodcast is running, restart it "
          "to apply: sudo systemctl restart moodcast")
    for note in switch_notes(changes):
        print(note)
    return 0


def cmd_mqtt_cleanup(args, cfg) -> int:
    from moodcast.cli.cleanup import cleanup

    for line in cleanup(cfg, force=args.force):
        print(line)
    return 0

