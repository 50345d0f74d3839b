"""Generated documentation: the README's configuration and seed-compatibility tables (``python -m api.docs``).

Every ``STYLEQUEUE_*`` variable is declared once, in :mod:`stylequeue.config`, and every seed
route's fields once, in :mod:`api.seeds`; this renders them so the README cannot drift
(``tests/test_api_docs.py`` and ``tests/test_compat.py`` compare them).
"""

from __future__ import annotations

import re
from pathlib import Path

from api import seeds
from stylequeue import config


def sections() -> list[type[config.Section]]:
    """Every config section in :mod:`stylequeue.config`, in source order."""
    return [cls for cls in config.Section.__subclasses__() if cls.__module__ == config.__name__]


def _default(value: object) -> str:
    if value is None:
        return "**required**"
    if isinstance(value, bool):
        return f"`{'1' if value else '0'}`"
    return f"`{value}`" if value != "" else "(empty)"


def config_table() -> str:
    """Markdown: one row per variable, grouped by section."""
    lines = ["| variable | default | section | meaning |", "| --- | --- | --- | --- |"]
    for cls in sections():
        for row in config.describe(cls):
            choices = f"; one of {', '.join(f'`{c}`' for c in row['choices'])}" if row["choices"] else ""
            bounds = f" ({row['range']})" if row["range"] else ""
            help_text = (row["help"] + bounds + choices).replace("|", "\\|")
            lines.append(f"| `{row['env']}` | {_default(row['default'])} | {cls.__name__} | {help_text} |")
    return "\n".join(lines)


def compat_table() -> str:
    """Markdown: each seed route, its fields and what each becomes here."""
    lines = ["| seed route | seed field | becomes | how |", "| --- | --- | --- | --- |"]
    for route in seeds.SEED_ROUTES:
        lines.append(
            f"| {route.seed}: `{route.method} {route.path}` | | mode `{route.mode}` | answers {route.answer} |"
        )
        for f in route.fields:
            target = f"`{f.param}`" if f.param else "—"
            default = "" if f.default is None else f" (seed default: `{f.default}`)"
            lines.append(f"| | `{f.name}` ({f.kind}) | {target} | {f.doc}{default} |")
    for path, answer in seeds.STATUS_ROUTES:
        lines.append(f"| PixelBlend: `GET {path}` | | — | {answer} |")
    return "\n".join(lines)


README = Path(__file__).resolve().parent.parent / "README.md"
TABLES = {"config-table": config_table, "compat-table": compat_table}


def _replace_block(text: str, name: str, body: str) -> str:
    """``text`` with what lies between ``<!-- name -->`` and ``<!-- /name -->`` replaced (if both are there)."""
    block = re.compile(f"(<!-- {name} -->\n).*?(<!-- /{name} -->)", re.DOTALL)
    return block.sub(lambda match: f"{match[1]}{body}\n{match[2]}", text, count=1)


def update_readme(path: Path = README) -> bool:
    """Rewrite each generated table between its README markers; True if anything changed."""
    text = path.read_text()
    new = text
    for name, render in TABLES.items():
        new = _replace_block(new, name, render())
    if new != text:
        path.write_text(new)
    return new != text


if __name__ == "__main__":
    import sys

    if sys.argv[1:] == ["--update-readme"]:
        print("README.md updated" if update_readme() else "README.md was up to date")
    else:
        print(config_table())
