"""What each container of a stream of Kubernetes manifests runs, as the
kubelet gives it: read with PyYAML (a YAML 1.1 reader, like the
sigs.k8s.io/yaml that kubectl uses) from the file named first, `$(VAR)` references
expanded as the kubelet expands them, printed as JSON:
{container: {"command": [...], "args": [...], "env": {name: value}}}.
"""

import json
import sys

import yaml


def expand(text, env):
    """The kubelet's expansion (third_party/forked/golang/expansion in
    Kubernetes): `$$` is `$`, `$(NAME)` is NAME's value when it is
    defined and stays as written when not, any other `$` stays."""
    out = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "$" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            if nxt == "(":
                close = text.find(")", i + 2)
                if close != -1:
                    name = text[i + 2 : close]
                    out.append(env.get(name, "$(" + name + ")"))
                    i = close + 1
                    continue
            out.append(text[i : i + 2])
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def main():
    result = {}
    with open(sys.argv[1], encoding="utf-8") as stream:
        docs = list(yaml.safe_load_all(stream))
    for doc in docs:
        if doc is None or doc["kind"] not in ("Deployment", "Job"):
            continue
        for c in doc["spec"]["template"]["spec"]["containers"]:
            raw = [*c["command"], *c.get("args", []), *(v["value"] for v in c.get("env", []))]
            for value in raw:
                if not isinstance(value, str):
                    raise SystemExit(f"{c['name']}: {value!r} is not read as a string")
            env = {}
            for var in c.get("env", []):
                # Each value sees the variables defined before it.
                env[var["name"]] = expand(var["value"], env)
            result[c["name"]] = {
                "command": [expand(a, env) for a in c["command"]],
                "args": [expand(a, env) for a in c.get("args", [])],
                "env": env,
            }
    json.dump(result, sys.stdout, sort_keys=True)


main()
