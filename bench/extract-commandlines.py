#!/usr/bin/env python3
"""Collects real command lines and URLs from the public logs in ../shared/data into one file, one per
line, for the normalizer benchmark. Reads JSON and JSON-lines files, including JSON nested in string
fields (Sentinel's EventData). Writes nothing into the repository: the output path is an argument."""
import json, os, sys

FIELDS = {"CommandLine", "ParentCommandLine", "ProcessCommandLine", "InitiatingProcessCommandLine",
          "command_line", "cmdline", "RemoteUrl", "url", "uri", "Url", "proctitle"}

def walk(value, out):
    if isinstance(value, dict):
        for k, v in value.items():
            if k in FIELDS and isinstance(v, str) and v.strip():
                out.append(v.replace("\n", " ").replace("\r", " "))
            walk(v, out)
    elif isinstance(value, list):
        for v in value:
            walk(v, out)
    elif isinstance(value, str) and value[:1] in "{[":
        try:
            walk(json.loads(value), out)
        except ValueError:
            pass

def main():
    root, dest = sys.argv[1], sys.argv[2]
    out = []
    for dirpath, _, files in os.walk(root):
        if "/sigma/rules" in dirpath:
            continue
        for name in sorted(files):
            if not name.endswith((".json", ".jsonl", ".ndjson")):
                continue
            with open(os.path.join(dirpath, name), encoding="utf-8", errors="replace") as f:
                text = f.read()
            try:
                walk(json.loads(text), out)
                continue
            except ValueError:
                pass
            for line in text.splitlines():
                try:
                    walk(json.loads(line), out)
                except ValueError:
                    pass
    with open(dest, "w", encoding="utf-8") as f:
        for s in out:
            f.write(s + "\n")
    print(f"{len(out)} strings ({len(set(out))} distinct) from {root} -> {dest}", file=sys.stderr)

if __name__ == "__main__":
    main()
