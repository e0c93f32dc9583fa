"""`cachetop plugins`: what is installed (warmers, notifiers, backends) and what failed to load."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cachetop.engine.config import find_config_file, load_config
from cachetop.plugins import GROUPS, discover, plugin_paths_of
from cachetop.util.safe_text import display_key

HELP = "list installed plugins (warmers, notifiers, backends) and plugins that failed to load"
EPILOG = """\
Plugins come from entry points (groups cachetop.warmers, cachetop.notifiers, cachetop.backends) and
from the folders in `plugin_paths` of the config file. See docs/actions.md for the protocols.

exit status: 0 all loaded, 1 a plugin failed to load (the others are listed), 2 config error.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-c", "--config", metavar="FILE", help="TOML config file (for plugin_paths)")
    parser.add_argument(
        "--plugin-path", action="append", default=[], metavar="DIR", help="another plugin folder"
    )
    parser.add_argument("--json", action="store_true", help="print as JSON")


def run(args: argparse.Namespace) -> int:
    found = find_config_file(args.config)
    config = load_config(found) if found else None
    paths = plugin_paths_of(config) + [Path(p) for p in args.plugin_path]
    registry = discover(paths)
    rows = [p for kind in GROUPS for p in sorted(registry.plugins[kind].values(), key=lambda p: p.name)]
    if args.json:
        print(
            json.dumps(
                {
                    "plugins": [
                        {
                            "kind": p.kind[:-1],
                            "name": p.name,
                            "origin": p.origin,
                            "description": p.description,
                        }
                        for p in rows
                    ],
                    "errors": [str(e) for e in registry.errors],
                },
                indent=2,
            )
        )
    else:
        width = max([len(p.name) for p in rows] + [4])
        print(f"{'KIND':<9} {'NAME':<{width}}  DESCRIPTION  (ORIGIN)")
        for p in rows:
            desc = display_key(p.description, 70)
            print(
                f"{p.kind[:-1]:<9} {display_key(p.name, 40):<{width}}  {desc}  ({display_key(p.origin, 80)})"
            )
    for error in registry.errors:
        print(f"cachetop: {display_key(str(error), 300)}", file=sys.stderr)
    return 1 if registry.errors else 0
