#!/usr/bin/env python3
"""The import structure of src/: which module files use which, the circles
(files that import each other, directly or round a loop) per folder, and the
imports that point up a folder's layers (LAYERS below).

Usage: scripts/imports.py [--edges] [--check]
  --edges  also list every import edge inside each folder
  --check  exit 1 if a folder has a circle or an upward import not in ALLOWED

An import is any path `crate::a::b`, `super::a`, `self::a` in code (in `use`
lines, brace groups expanded, and inline), resolved to the longest prefix that
is a module file; a path through a `pub use` re-export of a module (lib.rs
keeping an old path) counts as an import of the module it names. Test code
is left out: files named tests*.rs and anything
after `#[cfg(test)]` at the start of a line, and comments. Files only.
"""
import os
import re
import sys

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")

# Layers per folder, bottom first: a file may import its own layer or lower.
# A subfolder uses its own table when it has one (`engine/remote`), else its
# top folder's (files of `engine/remote` rank in `engine`'s table too).
# The first pattern (a path relative to src/, `*` any run of characters) that
# matches a file gives its layer (a file named exactly first); files matching
# none are not ranked.
LAYERS = {
    # src/ itself, one node per top-level module (its file: `tui/mod.rs`, `cli.rs`)
    "": [
        # 0: the library core: model files, the engine, the conversation and
        # its storage, settings, places, text and terminal rules, fetching
        ["catalog.rs", "civil.rs", "config.rs", "conversation/mod.rs", "demo.rs",
         "engine/mod.rs", "gguf/mod.rs", "heat.rs", "i18n.rs", "llama_server.rs", "logging.rs",
         "paths.rs", "store/mod.rs", "tensor_map.rs", "terminal.rs", "text.rs"],
        # 1: the front ends' own rooms: the chat's TUI, the command line's shape
        ["tui/mod.rs", "cli.rs"],
        # 2: the subcommands, each running the core (the chat: the TUI)
        ["commands/mod.rs"],
    ],
    "tui": [
        # 0: data and pure helpers (State and its parts, the keymap, theme, layout, text wrapping)
        #    and the effects `update` returns, as data
        ["tui/state*", "tui/state/*", "tui/data/*", "tui/action.rs", "tui/theme.rs",
         "tui/layout.rs", "tui/wrap.rs", "tui/input_view.rs", "tui/live.rs",
         "tui/models.rs", "tui/popup*", "tui/effect.rs", "tui/outcome.rs"],
        # 1: shared transitions (cancel, load a model, new chat, replies, compare, engine events)
        ["tui/transitions*", "tui/transitions/*", "tui/reply.rs", "tui/compare.rs",
         "tui/engine_events.rs", "tui/prompt_scoring.rs", "tui/heat_scale.rs", "tui/lens_view.rs",
         "tui/rollouts_view.rs", "tui/kv_view.rs", "tui/asking.rs"],
        # 2: components: draw and handle their own keys, return what should happen
        ["tui/components/*"],
        # 3: the app: the update loop, rendering, the run loop and what it does
        #    outside (`execute`'s storage half in saving.rs, the signal thread,
        #    the terminal's restore on abort), benches
        ["tui/update.rs", "tui/render.rs", "tui/mod.rs", "tui/bench*.rs", "tui/app*",
         "tui/saving.rs", "tui/signals.rs", "tui/abort_guard.rs"],
    ],
    "engine": [
        # 0: the protocol (api/) and pure maths
        ["engine/api/*", "engine/probs.rs", "engine/frame.rs", "engine/path_serde.rs",
         "engine/divergence.rs", "engine/sampler.rs", "engine/memory.rs", "engine/report.rs",
         "engine/crash.rs", "engine/llama_log.rs", "engine/template.rs", "engine/kernels.rs"],
        # 1: the workers' parts (llama.cpp's and the remote server's), the
        #    cancellation flags they share
        ["engine/*"],
        # 2: the entry points
        ["engine/mod.rs", "engine/serve.rs", "engine/process.rs"],
    ],
    "engine/remote": [
        # 0: what a server is and what it sends, read without the network
        ["engine/remote/target.rs", "engine/remote/wire.rs", "engine/remote/sse.rs",
         "engine/remote/stream_read.rs"],
        # 1: HTTP
        ["engine/remote/client.rs"],
        # 2: the requests: a model loaded, request bodies, rebuilt tokens
        ["engine/remote/models.rs", "engine/remote/body.rs", "engine/remote/rebuild.rs"],
        # 3: serving a generation
        ["engine/remote/reply.rs"],
        # 4: the entry points: the worker loop, the subcommands' helpers
        ["engine/remote/mod.rs", "engine/remote/info.rs", "engine/remote/overhead.rs"],
    ],
}

# Upward imports that are allowed, each with its reason: (from, to, why).
ALLOWED = []


def module_files():
    """{module path ('tui::state'): file path relative to src/}."""
    mods = {}
    for root, _, files in os.walk(SRC):
        for f in files:
            if not f.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(root, f), SRC).replace(os.sep, "/")
            if re.match(r"(.*/)?tests(_\w+)?\.rs$", rel) or rel == "main.rs":
                continue
            parts = rel[:-3].split("/")
            if parts[-1] in ("mod", "lib"):
                parts = parts[:-1]
            mods["::".join(parts)] = rel
    return mods


def aliases(mods):
    """{alias module path: module path} for `pub use` lines that re-export a
    module under another name (lib.rs: `pub use commands::headless;` makes
    `crate::headless` mean `commands::headless`), so that an import through
    the old path counts as the import it is."""
    out = {}
    for module, path in mods.items():
        for m in re.finditer(r"\bpub\s+use\s+([^;]+);", code_of(path)):
            for target in expand(m.group(1)):
                parts = target.split("::")
                if parts[0] == "crate":
                    parts = parts[1:]
                elif parts[0] == "self":
                    parts = (module.split("::") if module else []) + parts[1:]
                else:
                    parts = (module.split("::") if module else []) + parts
                key = "::".join(parts)
                if key in mods:
                    alias = "::".join(([module] if module else []) + [parts[-1]])
                    if alias not in mods:
                        out[alias] = key
    return out


def code_of(path):
    text = open(os.path.join(SRC, path), encoding="utf-8").read()
    m = re.search(r"^#\[cfg\(test\)\]", text, re.M)
    if m:
        text = text[: m.start()]
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r'"(\\.|[^"\\])*"', '""', text)
    return text


def expand(tree):
    """`a::{b, c::{d, e}}` -> ['a::b', 'a::c::d', 'a::c::e']."""
    # `x as y` renames: dropped before the spaces go, so that a module whose
    # name starts with "as" (`ask_text`) is not read as a rename.
    tree = re.sub(r"\s+as\s+\w+", "", tree)
    tree = re.sub(r"\s+", "", tree)
    depth, i = 0, tree.find("{")
    if i < 0:
        return [tree]
    prefix, inner = tree[:i], tree[i + 1 : tree.rfind("}")]
    items, cur = [], ""
    for ch in inner:
        if ch == "," and depth == 0:
            items.append(cur)
            cur = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        cur += ch
    items.append(cur)
    out = []
    for it in filter(None, items):
        out += [prefix + e if e != "self" else prefix.rstrip(":") for e in expand(it)]
    return out


def imports(module, path, mods, alias=None):
    code = code_of(path)
    paths = []
    for m in re.finditer(r"\buse\s+([^;]+);", code):
        paths += expand(m.group(1))
    paths += re.findall(r"\b(?:crate|super|self)(?:::\w+)+", code)
    own = module.split("::") if module else []
    # super:: is relative to the module that holds the file's items
    targets = set()
    for p in paths:
        parts = p.split("::")
        if parts[0] == "crate":
            parts = parts[1:]
        elif parts[0] in ("super", "self"):
            base = list(own)
            while parts and parts[0] in ("super", "self"):
                if parts[0] == "super":
                    base = base[:-1]
                parts = parts[1:]
            parts = base + parts
        else:
            continue
        for n in range(len(parts), 0, -1):
            key = "::".join(parts[:n])
            key = (alias or {}).get(key, key)
            if key in mods:
                if key != module:
                    targets.add(key)
                break
    return targets


def layer_of(folder, rel):
    # A file named exactly wins over a pattern (so `engine/mod.rs` is not
    # taken by an earlier layer's `engine/*`).
    layers = LAYERS.get(folder, [])
    for rank, pats in enumerate(layers):
        if rel in pats:
            return rank
    for rank, pats in enumerate(layers):
        for pat in pats:
            if re.fullmatch(re.escape(pat).replace(r"\*", ".*"), rel):
                return rank
    return None


def sccs(nodes, edges):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in nodes:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def main():
    show_edges = "--edges" in sys.argv
    check = "--check" in sys.argv
    mods = module_files()
    alias = aliases(mods)
    edges = {m: imports(m, p, mods, alias) for m, p in mods.items()}
    folders = sorted({"" if "::" not in m else m.rsplit("::", 1)[0] for m in mods} | {""})
    # a folder's subtree: modules under it (src/ itself: every module, by top-level name)
    bad = 0
    print(f"{'folder':<22}{'files':>6}{'imports':>9}{'circles':>9}{'in circles':>12}{'upward':>8}")
    report = []
    for folder in folders:
        if folder and not any(m.startswith(folder + "::") for m in mods):
            continue
        if folder == "":
            # top level: one node per top-level module (its whole subtree)
            top = lambda m: m.split("::")[0]
            nodes = {top(m) for m in mods if m}
            fe = {}
            for m, ts in edges.items():
                if not m:
                    continue
                for t in ts:
                    if t and top(t) != top(m):
                        fe.setdefault(top(m), set()).add(top(t))
        else:
            nodes = {m for m in mods if m == folder or m.startswith(folder + "::")}
            fe = {m: {t for t in edges[m] if t in nodes} for m in nodes}
        circles = [c for c in sccs(nodes, fe) if len(c) > 1]
        up = []
        # a folder's own table (`engine/remote`), else its top folder's
        key = folder.replace("::", "/")
        if key not in LAYERS and "::" not in folder:
            key = folder
        if key in LAYERS:
            for m in sorted(nodes):
                for t in sorted(fe.get(m, ())):
                    a, b = layer_of(key, mods[m]), layer_of(key, mods[t])
                    if a is not None and b is not None and b > a:
                        if not any(mods[m] == f and mods[t] == to for f, to, _ in ALLOWED):
                            up.append((mods[m], mods[t]))
        n_edges = sum(len(v) for v in fe.values())
        name = "src/" + folder.replace("::", "/") if folder else "src (top-level modules)"
        print(f"{name:<22}{len(nodes):>6}{n_edges:>9}{len(circles):>9}"
              f"{sum(map(len, circles)):>12}{len(up) if key in LAYERS else '-':>8}")
        report.append((name, circles, up, fe))
        bad += len(circles) + len(up)
    for name, circles, up, fe in report:
        if circles or up or show_edges:
            print(f"\n## {name}")
        for c in circles:
            print(f"  circle of {len(c)}: {' '.join(c)}")
        for a, b in up:
            print(f"  upward: {a} -> {b}")
        if show_edges:
            for m in sorted(fe):
                for t in sorted(fe[m]):
                    print(f"  {m} -> {t}")
    if check and bad:
        sys.exit(1)


if __name__ == "__main__":
    main()
