#!/usr/bin/env python3
"""layers.py - checks the include graph of src/: no cycles, and the layering rule.

Every quoted include "layer/file.h" in src/ is an edge. The check fails when:
  - the graph has a cycle (between headers, or between modules: a.c/a.h -> b.h
    and b.c/b.h -> a.h count as one module each);
  - src/core includes anything outside src/core (the core depends on nothing:
    no wire, store, net, server, client or sim);
  - an adapter layer includes a layer it must not (see ALLOWED).
Usage: layers.py [SRC_DIR]   (default: the src/ next to this script's tools/)
Exit status 0 when clean, 1 with one line per problem otherwise.
"""
import os
import re
import sys

# Which layers each layer may include (besides itself).
ALLOWED = {
    "core": set(),
    "wire": {"core"},
    "store": {"core"},
    "net": {"core", "wire"},
    "server": {"core", "wire", "store", "net"},
    "client": {"core", "wire", "net"},
    "sim": {"core", "wire"},
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([a-z_]+)/([A-Za-z0-9_.-]+)"', re.M)


def module_of(layer, fn):
    """A module is a .c with its .h; a private header x_int.h belongs to x."""
    base = fn.rsplit(".", 1)[0]
    if base.endswith("_int"):
        base = base[:-4]
    return layer + "/" + base


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "src")
    edges = {}  # module "layer/name" -> set of modules
    problems = []
    for layer in sorted(os.listdir(src)):
        ldir = os.path.join(src, layer)
        if not os.path.isdir(ldir):
            continue
        for fn in sorted(os.listdir(ldir)):
            if not fn.endswith((".c", ".h")):
                continue
            mod = module_of(layer, fn)
            text = open(os.path.join(ldir, fn), encoding="utf-8").read()
            for inc_layer, inc_file in INCLUDE.findall(text):
                if inc_file.endswith(".pb-c.h"):
                    continue  # generated wire code
                if not os.path.isdir(os.path.join(src, inc_layer)):
                    continue  # the public headers in include/, not a layer of src/
                target = module_of(inc_layer, inc_file)
                if inc_layer != layer and inc_layer not in ALLOWED.get(layer, set()):
                    problems.append("%s/%s includes %s/%s: layer %s may not depend on %s"
                                    % (layer, fn, inc_layer, inc_file, layer, inc_layer))
                if target != mod:
                    edges.setdefault(mod, set()).add(target)
    # Cycle search (iterative DFS with colours).
    colour = {}
    for start in sorted(edges):
        if colour.get(start):
            continue
        stack = [(start, iter(sorted(edges.get(start, ()))))]
        path = [start]
        colour[start] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                colour[node] = 2
                stack.pop()
                path.pop()
                continue
            c = colour.get(nxt, 0)
            if c == 1:
                cyc = path[path.index(nxt):] + [nxt]
                problems.append("include cycle: " + " -> ".join(cyc))
            elif c == 0:
                colour[nxt] = 1
                stack.append((nxt, iter(sorted(edges.get(nxt, ())))))
                path.append(nxt)
    for p in problems:
        print(p)
    if not problems:
        print("layers: %d modules, no cycles, layering respected" % len(edges))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
