#!/usr/bin/env python3
"""Which `pub` items of src/ nothing outside the library names: candidates for
`pub(crate)` (or private).

The library's public surface is for src/main.rs (a crate of its own) and the
integration tests (tests/, benches/, examples/). An item declared `pub` in
src/ whose name appears in none of those files is listed, with where it is
declared; a reader then judges each one (an item also used by the library's
own unit tests only may belong under `#[cfg(test)]`; one that appears in the
signature of an item used outside must stay `pub`; trait methods and trait
impls are not listed).

Usage: scripts/pub_audit.py [--all] [PATH_PREFIX...]
  PATH_PREFIX  only items declared under these paths of src/ (e.g. engine/ store/)
  --all        also items of modules that are not public and not
               re-exported, the items kept `pub` on purpose (KEPT below), and
               every item with its verdict

A module is public when declared `pub mod` in a public one or glob re-exported
(`pub use m::*`) from one; an item of another module counts when a public
module re-exports it by name.

Heuristic, by name: a name found anywhere outside (as a word, comments
included) counts as used, so common method names (`new`, `len`) are never
listed; test code of src/ (files named tests*.rs, anything after a
`#[cfg(test)]` at the start of a line) is left out, as in scripts/imports.py.
"""
import os
import re
import signal
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SRC = os.path.join(ROOT, "src")
OUTSIDE = ["src/main.rs", "tests", "benches", "examples"]

# Items named nowhere outside that stay `pub` on purpose (path relative to
# src/, name): shown only with --all, with the reason.
INTERFACE = "in the signature or a field of a `pub` item used outside"
KEPT = {
    **{("catalog.rs", n): INTERFACE for n in
       ["TypeShare", "Misfit", "TensorMix", "VariantKey", "MadeFrom"]},
    **{("cli.rs", n): INTERFACE for n in
       ["GlobalFlags", "GenFlags", "BenchSection", "ExportFormat"]},
    **{("config.rs", n): INTERFACE for n in ["ServerConfig", "EngineConfig", "ConfigError"]},
    ("demo.rs", "DemoError"): INTERFACE,
    ("gguf/mod.rs", "TensorInfo"): INTERFACE,
    ("engine/memory.rs", "MemoryNeed"): INTERFACE,
    ("engine/mod.rs", "resample"): INTERFACE,
    **{("engine/resample.rs", n): INTERFACE for n in ["Rule", "Fate", "Unsure", "Resampled"]},
    **{("engine/sampler.rs", n): INTERFACE for n in ["InvalidParam", "ParamName"]},
    **{("store/mod.rs", n): INTERFACE for n in
       ["StoreError", "Summary", "StoredNode", "StoredConversation"]},
    ("conversation/compare_stats.rs", "Summary"): INTERFACE,
    ("conversation/mod.rs", "compare_stats"): INTERFACE,
    ("commands/headless.rs", "LocalEngine"): INTERFACE,
    **{("commands/quantize/mod.rs", n): INTERFACE for n in
       ["QuantizeError", "Plan", "Progress", "Fallback"]},
    ("tui/state/mod.rs", "Notice"): INTERFACE + " (tests/ read `s.view.notice`'s text)",
    ("tui/models.rs", "ModelEntry"): INTERFACE + " (what `discover` returns)",
    ("engine/api/event.rs", "Candidate"): INTERFACE + " (`Distribution::top`)",
    ("engine/api/ids.rs", "SlotId"): INTERFACE + " (the protocol's slots: Command, Event, EngineError)",
    ("engine/api/model.rs", "LearnedPieces"): INTERFACE + " (`Vocab::learned`)",
    ("engine/api/model.rs", "Capabilities"): INTERFACE + " (`Event::Loaded`'s caps)",
}

ITEM = re.compile(
    r"^(?P<indent>\s*)pub\s+(?:(?:const|async|unsafe|extern\s+\"C\")\s+)*"
    r"(?P<kind>fn|struct|enum|const|static|type|trait|mod|union)\s+(?:mut\s+)?(?P<name>\w+)"
)
PUB_USE = re.compile(r"^\s*pub\s+use\s+(?P<path>[^;]+);")
MOD = re.compile(r"^\s*(?P<vis>pub(?:\([^)]*\))?\s+)?mod\s+(?P<name>\w+)\s*;")
TRAIT_IMPL = re.compile(r"^\s*impl\b[^{]*\bfor\b")


def rust_files(base):
    for d, _, files in os.walk(base):
        for f in sorted(files):
            if f.endswith(".rs"):
                yield os.path.join(d, f)


def code_lines(path):
    """The lines of `path` before its test code, numbered from 1."""
    if os.path.basename(path).startswith("tests"):
        return []
    out = []
    with open(path, encoding="utf-8") as fh:
        for i, line in enumerate(fh, 1):
            if line.startswith("#[cfg(test)]"):
                break
            out.append((i, line))
    return out


def module_of(rel):
    """`engine/api/mod.rs` -> `engine::api`; `lib.rs` -> ``."""
    parts = rel[:-3].split("/")
    if parts[-1] in ("mod", "lib"):
        parts = parts[:-1]
    return "::".join(parts)


def resolve(module, path):
    """A `use` path written in `module` as (module path, last name)."""
    segs = [x for x in path.split("::") if x]
    base = module.split("::") if module else []
    if segs and segs[0] == "crate":
        base, segs = [], segs[1:]
    while segs and segs[0] in ("super", "self"):
        if segs.pop(0) == "super":
            base = base[:-1]
    return "::".join(base + segs[:-1]), segs[-1] if segs else ""


def public_modules():
    """Modules reachable from the crate root through `pub mod` declarations
    or a glob `pub use m::*`, and the (module, name) items a `pub use` names."""
    decl = {}  # module path -> declared pub (in its parent file)
    uses = []  # (module of the `pub use`, target module, name or "*")
    for path in rust_files(SRC):
        rel = os.path.relpath(path, SRC)
        if rel == "main.rs":
            continue
        here = module_of(rel)
        for _, line in code_lines(path):
            m = MOD.match(line)
            if m:
                child = f"{here}::{m['name']}" if here else m["name"]
                decl[child] = (m["vis"] or "").strip() == "pub"
            u = PUB_USE.match(line)
            if u:
                prefix, _, group = u["path"].partition("{")
                for item in (group.rstrip("}").split(",") if group else [""]):
                    item = re.sub(r"\s+as\s+\w+", "", item).strip()
                    target, name = resolve(here, prefix + item)
                    if name:
                        uses.append((here, target, name))
    public = set([""])
    reexported = set()
    changed = True
    while changed:
        changed = False
        for mod in sorted(decl, key=lambda m: m.count("::")):
            parent = mod.rsplit("::", 1)[0] if "::" in mod else ""
            if decl[mod] and parent in public and mod not in public:
                public.add(mod)
                changed = True
        for here, target, name in uses:
            if here not in public:
                continue
            if name == "*" and target not in public:
                public.add(target)
                changed = True
            elif name != "*" and (target, name) not in reexported:
                reexported.add((target, name))
                changed = True
    return public, reexported


def outside_words():
    words = set()
    for entry in OUTSIDE:
        p = os.path.join(ROOT, entry)
        paths = [p] if os.path.isfile(p) else (rust_files(p) if os.path.isdir(p) else [])
        for path in paths:
            with open(path, encoding="utf-8") as fh:
                words.update(re.findall(r"\w+", fh.read()))
    return words


def main(args):
    show_all = "--all" in args
    prefixes = [a for a in args if not a.startswith("--")]
    public, reexported = public_modules()
    used = outside_words()
    found = 0
    for path in rust_files(SRC):
        rel = os.path.relpath(path, SRC)
        if rel in ("main.rs", "lib.rs") or (prefixes and not any(rel.startswith(p) for p in prefixes)):
            continue
        module = module_of(rel)
        in_public = module in public
        trait_depth = None  # indentation of an `impl … for …` block being skipped
        for i, line in code_lines(path):
            stripped = line.strip()
            indent = len(line) - len(line.lstrip())
            if trait_depth is not None:
                if stripped == "}" and indent == trait_depth:
                    trait_depth = None
                continue
            if TRAIT_IMPL.match(line) and not stripped.endswith("}"):
                trait_depth = indent
                continue
            names = []
            m = ITEM.match(line)
            if m:
                names.append((m["kind"], m["name"]))
            u = PUB_USE.match(line)
            if u:
                use_path = re.sub(r"\w+\s+as\s+(\w+)", r"\1", u["path"])
                tail = use_path.split("{", 1)[1] if "{" in use_path else use_path
                for n in re.split(r"[,{}\s]+", tail):
                    n = n.split("::")[-1]
                    if n and n not in ("self", "*"):
                        names.append(("use", n))
            for kind, name in names:
                outside = name in used
                kept = KEPT.get((rel, name))
                public_item = in_public or (module, name) in reexported
                if not show_all and (outside or not public_item or kept):
                    continue
                found += 1
                verdict = "used outside" if outside else f"kept pub: {kept}" if kept else "not named outside"
                where = "" if in_public else "  (re-exported)" if public_item else "  (module not public)"
                print(f"src/{rel}:{i}: {kind} {name}: {verdict}{where}")
    if not show_all:
        print(f"{found} pub items of public modules are named nowhere outside the library"
              " (and not kept on purpose)", file=sys.stderr)


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `| head` ends it quietly
    main(sys.argv[1:])
