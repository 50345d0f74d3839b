"""The ``stylequeue`` command. Each sub-command lives in its own module with a ``register``.

It sits outside the domain package because it imports both applications (api/, consumer/).

Modules are imported only to build the parser; none imports torch at import time, so
``stylequeue --help`` is fast and the API image needs no torch.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from stylequeue.errors import StylequeueError

# Each module defines ``register(subparsers)``, which adds its parser(s) with ``func`` set.
COMMAND_MODULES = (
    "consumer.commands.gatys",
    "consumer.commands.blend",
    "consumer.commands.train",
    "consumer.commands.worker",
    "consumer.commands.reconcile",
    "consumer.commands.models",
    "api.commands",
    "launcher.dev",
)


def build_parser(modules: tuple[str, ...] = COMMAND_MODULES) -> argparse.ArgumentParser:
    return _parsers(modules)[0]


def commands(modules: tuple[str, ...] = COMMAND_MODULES) -> dict[str, argparse.ArgumentParser]:
    """Each sub-command's parser by name (``stylequeue NAME``): its flags and help, for docs and tests."""
    return _parsers(modules)[1]


def _parsers(modules: tuple[str, ...]) -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    parser = argparse.ArgumentParser(prog="stylequeue", description="Neural style transfer job queue.")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING …")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in modules:
        importlib.import_module(name).register(subparsers)
    return parser, dict(subparsers.choices)


def main(argv: list[str] | None = None, *, modules: tuple[str, ...] = COMMAND_MODULES) -> int:
    """Run a sub-command; ``modules`` narrows the parser to some (an image stage with a few files)."""
    parser = build_parser(modules)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args.func(args) or 0)
    except StylequeueError as exc:
        print(f"stylequeue {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
