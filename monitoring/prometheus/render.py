"""Render ``prometheus.yml`` for a stack on local ports (tests, ``stylequeue dev``).

The compose file's config finds targets by service name; a local stack has them on loopback
ports. This keeps every scrape job and rule file of the real config and only swaps each job's
targets for static ones, with short intervals so that a test sees data within seconds::

    python monitoring/prometheus/render.py --target api=127.0.0.1:8000 \\
        --target consumer-gatys=127.0.0.1:9101 --interval 1s --out /tmp/prometheus.yml
"""

from __future__ import annotations

import argparse
import copy
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "prometheus.yml"
DISCOVERY_KEYS = ("static_configs", "dns_sd_configs", "file_sd_configs")


def render(
    targets: Mapping[str, Sequence[str]], *, interval: str = "1s", config: Path = CONFIG
) -> dict[str, Any]:
    """The config with each named job scraping ``targets[job]``; jobs not named are dropped.

    Rule files become absolute paths (the rendered file is written elsewhere). An unknown job
    name is an error, so a renamed scrape job cannot silently leave a test without data.
    """
    base = yaml.safe_load(config.read_text())
    jobs = {job["job_name"]: job for job in base["scrape_configs"]}
    unknown = sorted(set(targets) - set(jobs))
    if unknown:
        raise ValueError(f"unknown scrape job(s) {', '.join(unknown)}; the config has {', '.join(jobs)}")
    rendered = copy.deepcopy(base)
    rendered["global"].update(scrape_interval=interval, scrape_timeout=interval, evaluation_interval=interval)
    rendered["rule_files"] = [str((config.parent / rule).resolve()) for rule in base.get("rule_files", ())]
    rendered["scrape_configs"] = [_local(jobs[name], list(hosts)) for name, hosts in targets.items() if hosts]
    return rendered


def _local(job: Mapping[str, Any], hosts: list[str]) -> dict[str, Any]:
    local = {key: value for key, value in job.items() if key not in DISCOVERY_KEYS}
    local["static_configs"] = [{"targets": hosts}]
    return local


def write(path: Path, targets: Mapping[str, Sequence[str]], *, interval: str = "1s") -> Path:
    path.write_text(yaml.safe_dump(render(targets, interval=interval), sort_keys=False))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", action="append", default=[], metavar="JOB=HOST:PORT", help="repeatable")
    parser.add_argument("--interval", default="1s")
    parser.add_argument("--out", type=Path, help="write here (default: stdout)")
    args = parser.parse_args(argv)
    targets: dict[str, list[str]] = {}
    for item in args.target:
        job, sep, host = item.partition("=")
        if not sep or not host:
            parser.error(f"--target wants JOB=HOST:PORT, got {item!r}")
        targets.setdefault(job, []).append(host)
    if args.out:
        write(args.out, targets, interval=args.interval)
    else:
        sys.stdout.write(yaml.safe_dump(render(targets, interval=args.interval), sort_keys=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
