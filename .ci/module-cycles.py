#!/usr/bin/env python3
"""Fails when files of one crate import each other in a cycle.

For every crate under host/, each source file is a module; a `use` of (or a
path through) `crate::…`, `super::…`, `self::…` or a child module is an edge
from the file to the file of the module it names. A `mod` declaration alone
is not an edge. Test modules (`#[cfg(test)] mod tests`) are left out: a test
of a module may use its parent.
"""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def modules(src: Path):
    found = {}
    for file in src.rglob("*.rs"):
        rel = file.relative_to(src).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] in ("lib", "main") and len(parts) == 1:
            parts = []
        elif parts[-1] == "mod":
            parts = parts[:-1]
        found[tuple(parts)] = file
    return found


def without_tests(text: str) -> str:
    out, depth, skipping = [], 0, False
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if not skipping and line.strip() == "#[cfg(test)]" and i + 1 < len(lines) and re.match(r"\s*mod \w+ \{", lines[i + 1]):
            skipping, depth = True, 0
            i += 1
            continue
        if skipping:
            depth += line.count("{") - line.count("}")
            if depth <= 0 and "}" in line:
                skipping = False
            i += 1
            continue
        out.append(line)
        i += 1
    return "\n".join(out)


PATH = re.compile(r"\b(crate|super|self)((?:::\w+)+)")


def edges(mods):
    graph = {m: set() for m in mods}
    for mod, file in mods.items():
        text = without_tests(file.read_text())
        text = re.sub(r"//[^\n]*", "", text)
        children = {m[-1] for m in mods if len(m) == len(mod) + 1 and m[: len(mod)] == mod}
        refs = []
        for head, rest in PATH.findall(text):
            segs = [s for s in rest.split("::") if s]
            if head == "crate":
                base = []
            elif head == "super":
                base = list(mod[:-1])
                while segs and segs[0] == "super":
                    base, segs = base[:-1], segs[1:]
            else:
                base = list(mod)
            refs.append(base + segs)
        # `use child::…` and `child::item` for modules this file declares.
        for child in children:
            if re.search(rf"(?<![\w:]){child}::", text):
                refs.append(list(mod) + [child])
        # Grouped imports: `use crate::{a, b::c}` and `use super::{a, b}`.
        for head, group in re.findall(r"\b(crate|super|self)::\{([^}]*)\}", text):
            base = [] if head == "crate" else list(mod[:-1]) if head == "super" else list(mod)
            for item in group.split(","):
                item = item.strip()
                if item:
                    refs.append(base + item.split("::"))
        for ref in refs:
            for n in range(len(ref), -1, -1):
                target = tuple(ref[:n])
                if target in mods:
                    if target != mod:
                        graph[mod].add(target)
                    break
    return graph


def cycles(graph):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(component)

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            visit(v)
    return out


def main():
    failed = False
    for manifest in sorted(ROOT.glob("host/*/Cargo.toml")):
        src = manifest.parent / "src"
        if not src.is_dir():
            continue
        mods = modules(src)
        for component in cycles(edges(mods)):
            failed = True
            names = ", ".join(str(mods[m].relative_to(ROOT)) for m in sorted(component))
            print(f"import cycle in {manifest.parent.name}: {names}")
    if failed:
        sys.exit(1)
    print("no import cycle between the files of any crate under host/")


main()
