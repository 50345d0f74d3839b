"""Generated documentation: the README's configuration table (``python -m api.docs``).

Every ``STYLEQUEUE_*`` variable is declared once, in :mod:`stylequeue.config`; this renders them so
the README cannot drift (``tests/test_api_docs.py`` compares the two).
"""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

from stylequeue import config


def sections() -> list[type]:
    """Every config section in :mod:`stylequeue.config`, in source order."""
    found = []
    for _, cls in inspect.getmembers(config, inspect.isclass):
        if dataclasses.is_dataclass(cls) and cls.__module__ == config.__name__:
            fields = dataclasses.fields(cls)
            if fields and all("env" in f.metadata for f in fields):
                found.append(cls)
    return sorted(found, key=lambda cls: inspect.getsourcelines(cls)[1])


def _default(value: object) -> str:
    if value is None:
        return "**required**"
    if isinstance(value, bool):
        return f"`{'1' if value else '0'}`"
    if isinstance(value, Path):
        return f"`{value}`"
    return f"`{value}`" if value != "" else "(empty)"


def config_table() -> str:
    """Markdown: one row per variable, grouped by section."""
    lines = ["| variable | default | section | meaning |", "| --- | --- | --- | --- |"]
    for cls in sections():
        for row in config.describe(cls):
            help_text = row["help"].replace("|", "\\|")
            lines.append(f"| `{row['env']}` | {_default(row['default'])} | {cls.__name__} | {help_text} |")
    return "\n".join(lines)


README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- config-table -->\n", "\n<!-- /config-table -->"


def update_readme(path: Path = README) -> bool:
    """Rewrite the table between the README's config-table markers; True if it changed."""
    text = path.read_text()
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    new = f"{head}{START}{config_table()}{END}{tail}"
    if new != text:
        path.write_text(new)
    return new != text


if __name__ == "__main__":
    import sys

    if sys.argv[1:] == ["--update-readme"]:
        print("README.md updated" if update_readme() else "README.md was up to date")
    else:
        print(config_table())
