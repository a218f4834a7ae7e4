"""README.md is the contract scripts rely on: helpers that read it (the file itself, never a copy).

- `commands()`: every `rescue ...` command line the README shows (tables and code blocks).
- `exit_codes()`: the exit-code table.
- `json_keys(prefix)`: the key tree a "`rescue X --json`" paragraph lists, e.g. {"disks": {"path": {}}}.
- `check_keys(tree, doc)`: the keys of `tree` missing from a real JSON document (dotted paths).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
IMAGE_README = REPO / "image" / "README.md"


def text(path: Path = README) -> str:
    return path.read_text()


def section(name: str, path: Path = README) -> str:
    """The text under the `## name` heading, up to the next `## `."""
    s = text(path)
    m = re.search(rf"^## {re.escape(name)}\s*$(.*?)(?=^## |\Z)", s, re.M | re.S)
    if not m:
        raise AssertionError(f"{path.name} has no section '## {name}'")
    return m.group(1)


def commands(path: Path = README) -> List[str]:
    """Every `rescue ...` command the README shows: backticked in text and tables, and lines of
    code blocks (a `$ ` prompt and a trailing `# comment` removed)."""
    s = text(path)
    out: List[str] = []
    for block in re.findall(r"```(?:sh|console)?\n(.*?)```", s, re.S):
        for line in block.splitlines():
            line = line.strip()
            if line.startswith("$ "):
                line = line[2:]
            if line.startswith("sudo "):
                line = line[5:]
            if line.startswith("rescue "):
                out.append(line.split("  #")[0].split(" # ")[0].strip())
    no_blocks = re.sub(r"```.*?```", "", s, flags=re.S)
    for cmd in re.findall(r"`(rescue [^`]+)`", no_blocks):
        out.append(cmd.replace("\\|", "|"))
    return out


def exit_codes(path: Path = README) -> Dict[int, str]:
    rows = re.findall(r"^\| (\d+) \| (.+?) \|$", section("Exit codes", path), re.M)
    return {int(code): meaning for code, meaning in rows}


def make_targets(path: Path) -> List[str]:
    return sorted(set(re.findall(r"`make ([a-z][a-z0-9-]*)", text(path)) +
                      re.findall(r"^make ([a-z][a-z0-9-]*)", text(path), re.M)))


# --- JSON keys ----------------------------------------------------------------------------------
KeyTree = Dict[str, "KeyTree"]


def json_keys(prefix: str, path: Path = README) -> KeyTree:
    """The keys listed after `prefix` (e.g. "`rescue inspect --json` keys (stable):") up to the end of
    its paragraph: `key` names, `[{` / `{` opening the keys of the key before, `}` closing them;
    anything in parentheses is a description (values, notes), not keys."""
    s = text(path)
    at = s.find(prefix)
    if at < 0:
        raise AssertionError(f"README does not say {prefix!r}")
    para = s[at + len(prefix):].split("\n\n", 1)[0]
    root: KeyTree = {}
    stack: List[KeyTree] = [root]
    last: Optional[str] = None
    depth = 0                       # parentheses
    for tok in re.findall(r"`[^`]+`|\[\{|\{|\}\]|\}|\(|\)", para):
        if tok == "(":
            depth += 1
        elif tok == ")":
            depth = max(0, depth - 1)
        elif depth:
            continue
        elif tok in ("[{", "{"):
            if last is None:
                raise AssertionError(f"{prefix}: '{tok}' before any key")
            stack.append(stack[-1][last])
        elif tok in ("}", "}]"):
            if len(stack) > 1:
                stack.pop()
        else:
            key = tok.strip("`")
            if re.fullmatch(r"[a-z_][a-z0-9_]*", key):
                stack[-1].setdefault(key, {})
                last = key
    return root


def check_keys(tree: KeyTree, doc, where: str = "") -> List[str]:
    """Dotted paths of the keys in `tree` that `doc` lacks (lists: every element is checked)."""
    missing: List[str] = []
    if isinstance(doc, list):
        for item in doc:
            missing += check_keys(tree, item, where)
        return missing
    if not isinstance(doc, dict):
        return missing if not tree else ([] if doc is None else [f"{where} is not an object"])
    for key, sub in tree.items():
        path = f"{where}.{key}" if where else key
        if key not in doc:
            missing.append(path)
        elif sub:
            missing += check_keys(sub, doc[key], path)
    return sorted(set(missing))


def command_path(cmd: str) -> Tuple[List[List[str]], List[str]]:
    """("rescue crashdump show|enable DISK --ram 16G") -> ([["crashdump"], ["show", "enable"]], ["--ram"]):
    the words that may name subcommands (alternatives split on |), and the long options shown."""
    words = cmd.split()[1:]
    names = []
    for w in words:
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]*(\|[a-z0-9][a-zA-Z0-9-]*)*|0x[0-9A-Fa-f]+", w):
            break
        names.append(w.split("|"))
    options = sorted(set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", cmd)))
    return names, options


def iter_command_lines(paths=(README,)) -> Iterator[Tuple[Path, str]]:
    for p in paths:
        for c in commands(p):
            yield p, c
