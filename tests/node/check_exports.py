#!/usr/bin/env python3
"""check_exports - libcauseway.so exports exactly its public API.

Usage: check_exports.py --nm NM --library libcauseway.so HEADER...

The public API is every function declared in the given headers
(include/causeway.h and include/causeway/error.h). The check fails when:
  - a declared function is not marked CW_EXPORT in its header;
  - the library exports a defined dynamic symbol that no header declares (an
    internal function, a global of the wire codec, protobuf-c's generated
    code, sanitizer bookkeeping: anything);
  - a declared function is not exported (missing from the version script
    src/client/libcauseway.map, or not defined at all).
Prints "1 passed, 0 failed" or the differences and "0 passed, 1 failed".
"""
import argparse
import re
import subprocess
import sys


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def declared_functions(path):
    """{name: marked_export} for every function declared in the header at path."""
    text = strip_comments(open(path, encoding="utf-8").read())
    # Preprocessor lines (with their continuations) declare no functions.
    text = re.sub(r"^[ \t]*#(?:[^\n]*\\\n)*[^\n]*", " ", text, flags=re.M)
    found = {}
    # A top-level declaration ends at ';' or at the '{' of a body or a struct.
    for decl in re.split(r"[;{}]", text):
        decl = " ".join(decl.split())
        m = re.search(r"\b(cw_[A-Za-z0-9_]+)\s*\(", decl)
        if m is None or decl.startswith("static ") or "(*" in decl:
            continue
        found[m.group(1)] = decl.startswith("CW_EXPORT ")
    return found


def exported_symbols(nm, library):
    out = subprocess.run([nm, "-D", "--defined-only", library], check=True,
                         capture_output=True, text=True).stdout
    syms = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3:
            syms.add(parts[2].split("@")[0])
    return syms


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nm", default="nm")
    ap.add_argument("--library", required=True)
    ap.add_argument("headers", nargs="+")
    a = ap.parse_args()

    declared = {}
    for h in a.headers:
        declared.update(declared_functions(h))
    problems = []
    if not declared:
        problems.append("no function declarations found in " + ", ".join(a.headers))
    for name, marked in sorted(declared.items()):
        if not marked:
            problems.append(f"{name} is declared without CW_EXPORT")
    exported = exported_symbols(a.nm, a.library)
    for name in sorted(exported - set(declared)):
        problems.append(f"{name} is exported by {a.library} but is not public API")
    for name in sorted(set(declared) - exported):
        problems.append(f"{name} is declared public but {a.library} does not export it")

    print(f"{len(declared)} public functions declared, {len(exported)} symbols exported")
    if problems:
        for p in problems:
            print("FAIL: " + p)
        print("0 passed, 1 failed")
        return 1
    print("1 passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
