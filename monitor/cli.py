"""``ordermon`` command line: one composition root per command, nothing at import time."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from typing import IO, Any

import msgspec

from monitor.config import ConfigError
from monitor.runtime import tune_gc


def _open_out(path: str | None) -> IO[bytes]:
    if path in (None, "-"):
        return sys.stdout.buffer
    return open(path, "wb")  # noqa: SIM115


def cmd_replay(args: argparse.Namespace) -> int:
    from monitor.config import load_params
    from monitor.replay import InputError, format_summary, replay

    params = load_params(args.config)
    notify = None
    if args.notify:  # the [alerts] configuration is checked before a long replay
        from alerts.cli import prepare_notify

        notify = prepare_notify(args.config)
    out = _open_out(args.out)
    rejects = open(args.rejects, "wb") if args.rejects else None  # noqa: SIM115
    try:
        mon, summary = replay(args.events, out, rejects, params)
    except InputError as exc:
        print(f"ordermon replay: {exc}", file=sys.stderr)
        return 2
    finally:
        if out is not sys.stdout.buffer:
            out.close()
        if rejects:
            rejects.close()
    out.flush() if out is sys.stdout.buffer else None
    if not args.quiet:
        sys.stderr.write(format_summary(mon, summary))
    n_rej = sum(mon.rejected.values())
    if n_rej and not args.rejects and not args.quiet:
        print(f"  note: {n_rej} rejected lines; pass --rejects FILE to keep them", file=sys.stderr)
    if notify is not None:
        return notify(summary.alerts)
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from monitor.simulate import simulate

    summary = simulate(
        args.seed,
        args.out,
        publishers=args.publishers,
        days=args.days,
        incidents=not args.no_incidents,
    )
    print(json.dumps(summary, indent=2, default=str))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from monitor.evaluate import default_events_path, evaluate, format_report

    events = args.events or default_events_path(args.incidents)
    try:
        report = evaluate(args.incidents, args.alerts, events, grace_s=args.grace_minutes * 60)
    except (msgspec.DecodeError, KeyError, TypeError, ValueError) as exc:  # DecodeError
        # includes msgspec's ValidationError; KeyError, TypeError and ValueError are the
        # wrong fields, types or timestamps of a JSON document that is not one of these
        what = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
        print(f"ordermon evaluate: --incidents {args.incidents} / --alerts {args.alerts} "
              f"are not an incidents.json and an alerts JSONL file: {what}",
              file=sys.stderr)  # fmt: skip
        return 2
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_report(report))
    return 0


def cmd_detect_series(args: argparse.Namespace) -> int:
    from monitor.series import run_detect_series

    return run_detect_series(args.series, sys.stdout)


def cmd_config_show(args: argparse.Namespace) -> int:
    from monitor.config import load_params, render, render_section

    text = render(load_params(args.config))
    from alerts.config import load_alerts_config
    from alerts.config import render as render_alerts
    from streams.settings import load_stream_settings

    # the stream service's settings (checked as `ordermon run` checks them), and delivery
    # settings, every secret (webhook URL, HMAC key) shown only by its source
    stream = render_section("stream", load_stream_settings(args.config))
    print(text + "\n" + stream + "\n" + render_alerts(load_alerts_config(args.config)))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    if args.offline:
        from monitor.demo import run_offline_demo

        return run_offline_demo(args.seed, args.publishers or 1500, args.days)
    from streams.demo import run_live_demo

    return run_live_demo(args)


def cmd_run(args: argparse.Namespace) -> int:
    from monitor.config import load_params
    from streams.service import run_service
    from streams.settings import load_stream_settings

    params = load_params(args.config)
    settings = load_stream_settings(
        args.config, broker=args.broker, web_port=args.web_port, web_host=args.web_host,
        app_id=args.app_id, store=args.store, datadir=args.datadir, partitions=args.partitions,
        embedded=True if args.embedded else None, log_format=args.log_format,
    )  # fmt: skip
    return run_service(settings, params, config_path=args.config, supervise=True)


def cmd_produce(args: argparse.Namespace) -> int:
    from streams.cli_produce import main_produce

    return main_produce(args)


def cmd_bench(args: argparse.Namespace) -> int:
    from monitor.bench import run_bench

    return run_bench(args)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="ordermon", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("replay", help="run the monitor over a JSONL file of events")
    p.add_argument("events", help="JSONL events: a file, a .gz file, or - for stdin")
    p.add_argument("--out", help="alerts JSONL (default stdout)")
    p.add_argument("--rejects", help="write every rejected line here with its code and message")
    p.add_argument("--config", help="TOML config file")
    p.add_argument("--quiet", action="store_true", help="no summary on stderr")
    p.add_argument(
        "--notify",
        action="store_true",
        help="also send the alerts through the configured receivers ([alerts] in "
        "--config, or ORDERMON_*_URL; see alerts/README.md); off by default",
    )
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("simulate", help="write a realistic labelled event stream")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out", required=True, help="directory for events.jsonl + incidents.json")
    p.add_argument("--publishers", type=_positive(int), default=3000)
    p.add_argument("--days", type=_positive(float), default=3.0)
    p.add_argument("--no-incidents", action="store_true")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("evaluate", help="score alerts against labelled incidents")
    p.add_argument("--incidents", required=True)
    p.add_argument("--alerts", required=True)
    p.add_argument(
        "--events",
        help="events file for the static baseline rule "
        "(default: events.jsonl beside the incidents file)",
    )
    p.add_argument("--grace-minutes", type=float, default=30.0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("detect-series", help="score a CSV timestamp,value series (causal)")
    p.add_argument("series", help="CSV file or - for stdin")
    p.set_defaults(func=cmd_detect_series)

    p = sub.add_parser("produce", help="load a JSONL file of events into a Kafka topic")
    p.add_argument("events", help="JSONL events: a file, a .gz file, or - for stdin")
    p.add_argument("--broker", required=True, help="kafka://host:port or host:port")
    p.add_argument("--topic", default="orders")
    p.add_argument("--rate", type=float, help="events per second (default: as fast as possible)")
    p.add_argument("--partitions", type=int, help="create the topic with this many partitions")
    p.add_argument("--connect-timeout", type=float, default=15.0)
    p.set_defaults(func=cmd_produce)

    p = sub.add_parser("config", help="configuration")
    csub = p.add_subparsers(dest="config_command", required=True)
    c = csub.add_parser("show", help="print the effective configuration")
    c.add_argument("--config", help="TOML config file")
    c.set_defaults(func=cmd_config_show)

    p = sub.add_parser("run", help="the stream service: one worker of the consumer group")
    p.add_argument("--broker", help="kafka://host:port (default from config, else 127.0.0.1:9092)")
    p.add_argument("--config", help="TOML config file ([stream] section + detector settings)")
    p.add_argument("--web-port", type=int, help="/healthz, /readyz, /status port (0: none)")
    p.add_argument("--web-host", help="web bind address (default 127.0.0.1)")
    p.add_argument("--app-id", help="consumer group and internal topic prefix")
    p.add_argument("--store", help="table store: rocksdb:// or memory://")
    p.add_argument("--datadir", help="local table data directory (one per worker)")
    p.add_argument("--partitions", type=int, help="input partitions if the topic is created")
    p.add_argument(
        "--embedded",
        action="store_true",
        help="the broker is the embedded Tansu (see streams/README.md)",
    )
    p.add_argument(
        "--log-format",
        choices=("json", "console", "auto"),
        help="structured logs on stderr: json, console, or auto (default: console on a "
        "terminal, json otherwise)",
    )
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("bench", help="speed next to faust and decode-only baselines, one run")
    from monitor.bench import add_arguments as add_bench_arguments

    add_bench_arguments(p)
    p.set_defaults(func=cmd_bench)

    from streams.soak import add_parser as add_soak  # stdlib imports only at this point

    add_soak(sub)

    p = sub.add_parser("demo", help="the live demo: embedded broker, simulated stream, worker")
    p.add_argument(
        "--speed",
        type=float,
        default=1200.0,
        help="event time runs this many times faster than the wall clock",
    )
    p.add_argument(
        "--duration",
        type=float,
        help="stop after this many seconds (default: when the simulated stream ends, or Ctrl-C)",
    )
    p.add_argument("--web-port", type=int, default=0, help="status port (default: a free one)")
    p.add_argument(
        "--offline",
        action="store_true",
        help="the offline demo: simulate, replay in-process, print alerts",
    )
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--publishers", type=int, help="default 400 live, 1500 offline")
    p.add_argument("--days", type=float, default=1.5)
    p.set_defaults(func=cmd_demo)
    return ap


def _positive(kind: type) -> Callable[[str], Any]:
    """An argparse type: a finite number greater than 0 (else a usage error, exit 2)."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not (math.isfinite(value) and value > 0):
            raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
        return value

    return parse


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        tune_gc()
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"ordermon: configuration error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # (an OSError: before the clause below)
        return 0
    except OSError as exc:
        if exc.filename is None:  # not a path given on the command line: a real failure
            raise
        # a path on the command line that cannot be opened or created (a missing
        # directory, a directory given for a file, an existing --out): a usage error
        print(f"ordermon: {exc.filename}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
