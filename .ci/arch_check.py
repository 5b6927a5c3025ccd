#!/usr/bin/env python3
"""Architecture check of leakfree's runtime crate: import cycles between files.

usage: python3 .ci/arch_check.py . [--max-flat N]   (from the repository root)
Reads leakfree-runtime/src: each .rs file is a module; an edge A -> B is any
`crate::b::...` path (use lines and inline paths) or `super::b` in A that names
a module file B. Prints every cycle between files, the number of .rs files
directly in src/, and a summary line last. Exit 0 when there is no cycle and
src/ holds at most N files directly (default 12).
"""
import os, re, sys

root = os.path.join(os.path.abspath(sys.argv[1]), "leakfree-runtime", "src")
max_flat = int(sys.argv[sys.argv.index("--max-flat") + 1]) if "--max-flat" in sys.argv else 12

mods = {}  # module path tuple -> file
for d, _, files in os.walk(root):
    for f in files:
        if not f.endswith(".rs"):
            continue
        rel = os.path.relpath(os.path.join(d, f), root)
        parts = rel[:-3].split(os.sep)
        if parts[-1] in ("mod", "lib"):
            parts = parts[:-1]
        mods[tuple(parts)] = rel

# `#[path = "private.rs"] pub mod __private;` style aliases
aliases = {}
for m, rel in mods.items():
    src = open(os.path.join(root, rel)).read()
    for p, name in re.findall(r'#\[path\s*=\s*"([^"]+)"\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)', src):
        target = tuple(m) + tuple(p[:-3].split("/")) if m else tuple(p[:-3].split("/"))
        aliases[tuple(m) + (name,)] = target

def resolve(path):
    path = tuple(path)
    for i in range(len(path), 0, -1):
        head = aliases.get(path[:i], path[:i])
        if head in mods:
            return head
    return None

def strip_comments(s):
    s = re.sub(r"//[^\n]*", "", s)
    return re.sub(r"/\*.*?\*/", "", s, flags=re.S)

def expand_use(tree):
    """crate::a::{b, c::d} -> [a::b, a::c::d] (one level of braces is enough here)."""
    out = []
    m = re.match(r"^(.*?)\{(.*)\}$", tree.strip(), re.S)
    if not m:
        return [tree.strip()]
    prefix, inner = m.group(1), m.group(2)
    depth, cur, items = 0, "", []
    for ch in inner:
        if ch == "," and depth == 0:
            items.append(cur); cur = ""; continue
        depth += ch == "{"; depth -= ch == "}"
        cur += ch
    items.append(cur)
    for it in items:
        if it.strip():
            out += [prefix + x for x in expand_use(it.strip())]
    return out

edges = {m: set() for m in mods}
for m, rel in mods.items():
    src = strip_comments(open(os.path.join(root, rel)).read())
    if rel.startswith("lib.rs") or rel == "lib.rs":
        continue  # the crate root re-exports; it is the top by definition
    paths = []
    for tree in re.findall(r"\buse\s+(crate::[^;]+);", src, re.S):
        paths += expand_use(tree)
    paths += re.findall(r"(?<![\w:])crate::((?:\w+::)*\w+)", src)
    for tree in re.findall(r"\buse\s+(super::[^;]+);", src, re.S):
        for p in expand_use(tree):
            parent = m[:-1] if rel.endswith("mod.rs") is False else m[:-1]
            paths.append("::".join(parent + tuple(p.split("::")[1:])))
    for p in paths:
        p = p.replace("crate::", "").replace(" ", "").replace("\n", "")
        segs = [s for s in p.split("::") if s and s != "self" and s != "*"]
        t = resolve(segs)
        if t is not None and t != m and t != ():
            # a file using a name of its own submodule is not an edge up
            if t[:len(m)] == m:
                continue
            edges[m].add(t)

# cycles: strongly connected components (Tarjan)
index, low, on, stack, sccs, counter = {}, {}, set(), [], [], [0]
def strong(v):
    index[v] = low[v] = counter[0]; counter[0] += 1; stack.append(v); on.add(v)
    for w in edges[v]:
        if w not in index:
            strong(w); low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop(); on.discard(w); comp.append(w)
            if w == v:
                break
        if len(comp) > 1:
            sccs.append(comp)
sys.setrecursionlimit(10000)
for v in mods:
    if v not in index:
        strong(v)

def name(m):
    return mods[m]
for comp in sccs:
    names = sorted(name(m) for m in comp)
    ties = sorted(f"{name(a)} -> {name(b)}" for a in comp for b in edges[a] if b in comp)
    print("CYCLE:", ", ".join(names)); print("   ", "; ".join(ties))
flat = sorted(f for f in os.listdir(root) if f.endswith(".rs"))
print(f"files directly in src/: {len(flat)} ({', '.join(flat)})")
ok = not sccs and len(flat) <= max_flat
print(f"{'PASS' if ok else 'FALLS SHORT'}: {len(sccs)} import cycles among {len(mods)} files; "
      f"{len(flat)} files directly in leakfree-runtime/src (at most {max_flat})")
sys.exit(0 if ok else 1)
