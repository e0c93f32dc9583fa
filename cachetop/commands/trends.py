"""`cachetop trends`: this bucket against the same bucket yesterday and a week ago, from history."""

from __future__ import annotations

import argparse
import json
import sys

from cachetop.engine.configfile import ConfigError
from cachetop.util.safe_text import display_key

HELP = "what changed since yesterday: hot keys, prefixes and hit ratio by hour, and the next bucket's keys"
DESCRIPTION = """\
Reads the history the daemon (or the dashboard) keeps in [settings] state_dir: per instance and
per [history] bucket (default 1h), the top keys and prefixes with their counts and the headline
metrics. Shows the last closed bucket against the same bucket one season back ("yesterday" with
24 one-hour buckets) and seven back ("a week ago"), the keys and prefixes that appeared or
vanished, the hit ratio by bucket of the season as a chart, and the keys predicted hot in the
next bucket with each predictor's precision@k over the last season (see docs/trends.md).
Sends nothing to any server."""
EPILOG = """\
JSON: {"instances": [{"instance", "bucket_s", "season", "this": {"metrics", "top_keys", ...},
"compare": [{"label", "metrics", "keys": {"appeared", "vanished"}, "prefixes"}],
"hit_ratio_by_phase": [...], "prediction": {"keys", "precision_at_k": {predictor: {"mean", "buckets"}}}}]}

examples:
  cachetop trends -c cachetop.toml
  cachetop trends -c cachetop.toml --instance cache-1 --json | jq '.instances[0].prediction'

exit status: 0 shown, 1 no history for an instance yet, 2 usage or config error.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from cachetop.cli import add_target_arguments

    add_target_arguments(parser)
    parser.add_argument("--instance", metavar="NAME", help="only this instance (by its config name)")
    parser.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace) -> int:
    from cachetop.commands.common import config_from_args
    from cachetop.history.config import history_settings, key_separators, warm_settings
    from cachetop.history.report import build_report, render_text
    from cachetop.history.store import HistoryStore

    config = config_from_args(args)
    names = [i.name for i in config.instances]
    if args.instance is not None:
        if args.instance not in names:
            known = ", ".join(display_key(n, 40) for n in names)
            raise ConfigError(
                f"--instance: no instance named {display_key(args.instance, 60)!r} (known: {known})"
            )
        names = [args.instance]
    settings = history_settings(config)
    k = warm_settings(config).top  # the k the keeper of the history scores its predictions with
    separators = key_separators(config)
    store = HistoryStore(config.settings.state_dir, settings, writable=False)
    missing = 0
    reports = []
    try:
        for name in names:
            report = build_report(store, name, settings, separators=separators, k=k)
            if report is None:
                missing += 1
                print(
                    f"cachetop: no history of {display_key(name, 60)} in {store.path} over the last 7 seasons"
                    " (kept while the daemon or the dashboard samples hot keys; a bucket is stored when it"
                    " closes)",
                    file=sys.stderr,
                )
                continue
            reports.append(report)
    finally:
        store.close()
    if args.json:
        print(json.dumps({"instances": reports}))
    else:
        for n, report in enumerate(reports):
            if n:
                print()
            print("\n".join(render_text(report)))
    return 1 if missing else 0
