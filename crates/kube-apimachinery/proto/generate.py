#!/usr/bin/env python3
"""Regenerates the Kubernetes protobuf schema that kube-apimachinery embeds (kube-testserver uses it too).

Usage: generate.py SRC OUT_DIR

SRC holds the Kubernetes sources laid out by Go import path:
  SRC/k8s.io/api/...                      (github.com/kubernetes/api)
  SRC/k8s.io/apimachinery/...             (github.com/kubernetes/apimachinery)
  SRC/k8s.io/apiextensions-apiserver/...  (github.com/kubernetes/apiextensions-apiserver)
Only the generated.proto files and the Go type definitions next to them are read.

Writes into OUT_DIR:
  kubernetes.binpb  a FileDescriptorSet of every generated.proto (protoc --include_imports,
                    no source info), read at run time by prost-reflect;
  json-fields.txt   what the .proto files do not say about the Go types behind each message,
                    which Kubernetes' JSON form follows: one line per field that differs from
                    the default rule, `<message full name> <proto field> <attribute>...`, with
                    attributes `json=<name>` (JSON name differs from the proto field name),
                    `inline` (an embedded struct whose fields are inlined in JSON), `ptr` (a
                    pointer to a scalar: set even when zero), `always` (a scalar
                    without omitempty, or a Time without omitzero: written even when zero,
                    a zero Time as null); and `<message full name> - slice` for a named Go
                    slice type (JSON array) wrapped in a message with `items`.
Needs protoc (Debian: protobuf-compiler).
"""
import os
import re
import subprocess
import sys

SCALARS = {"string", "bytes", "bool", "int32", "int64", "uint32", "uint64", "sint32", "sint64",
           "fixed32", "fixed64", "sfixed32", "sfixed64", "double", "float"}

FIELD_RE = re.compile(r"^\s*(?:optional|repeated|required)?\s*([\w.<>, ]+?)\s+(\w+)\s*=\s*\d+\s*;")
GO_FIELD_RE = re.compile(r"^\s*(?:(\w+)\s+)?([\*\[\]\w.]+)\s+`([^`]*)`\s*$")
TAG_RE = re.compile(r'(\w+):"([^"]*)"')


def proto_messages(path):
    """(package, {message: {field: type}}) of a generated.proto (top-level messages only)."""
    package = None
    messages = {}
    current = None
    depth = 0
    with open(path) as f:
        for line in f:
            line = line.split("//", 1)[0]
            if not line.strip():
                continue
            m = re.match(r"^package\s+([\w.]+);", line)
            if m:
                package = m.group(1)
            m = re.match(r"^message\s+(\w+)\s*{", line)
            if m and depth == 0:
                current = m.group(1)
                messages[current] = {}
            if current and depth == 1:
                fm = FIELD_RE.match(line)
                if fm:
                    messages[current][fm.group(2)] = fm.group(1).strip()
            depth += line.count("{") - line.count("}")
            if depth == 0:
                current = None
    return package, messages


def go_structs(directory):
    """{struct: [(go name, go type, tags)]} and {named slice type: element} of a Go package."""
    structs = {}
    slices = {}
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".go") or name.endswith("_test.go") or name.startswith("zz_") \
                or name.startswith("generated") or "swagger_doc" in name:
            continue
        current = None
        with open(os.path.join(directory, name)) as f:
            for line in f:
                m = re.match(r"^type\s+(\w+)\s+\[\]([\w.]+)\s*$", line.split("//", 1)[0])
                if m:
                    slices[m.group(1)] = m.group(2)
                m = re.match(r"^type\s+(\w+)\s+struct\s*{", line)
                if m:
                    current = m.group(1)
                    structs[current] = []
                    continue
                if current is None:
                    continue
                if line.startswith("}"):
                    current = None
                    continue
                code = line.strip()
                if code.startswith("//"):
                    continue
                gm = GO_FIELD_RE.match(line)
                if gm:
                    structs[current].append((gm.group(1), gm.group(2), dict(TAG_RE.findall(gm.group(3)))))
    return structs, slices


def main():
    src, out = sys.argv[1], sys.argv[2]
    protos = []
    for root, _, files in os.walk(src):
        if "generated.proto" in files:
            protos.append(os.path.relpath(os.path.join(root, "generated.proto"), src))
    protos = sorted(p for p in protos if "testapigroup" not in p)
    os.makedirs(out, exist_ok=True)
    subprocess.run(["protoc", "-I", src, "--include_imports",
                    "--descriptor_set_out", os.path.join(out, "kubernetes.binpb")] + protos,
                   check=True)
    lines = []
    for proto in protos:
        package, messages = proto_messages(os.path.join(src, proto))
        structs, slices = go_structs(os.path.join(src, os.path.dirname(proto)))
        for message in sorted(messages):
            full = f"{package}.{message}"
            if message in slices and list(messages[message]) == ["items"]:
                lines.append(f"{full} - slice")
                continue
            for go_name, go_type, tags in structs.get(message, []):
                if "protobuf" not in tags:
                    continue
                proto_name = dict(p.split("=", 1) for p in tags["protobuf"].split(",") if "=" in p).get("name")
                if proto_name not in messages[message]:
                    continue
                json_parts = tags.get("json", "").split(",")
                json_name = json_parts[0]
                omit = "omitempty" in json_parts[1:] or "omitzero" in json_parts[1:]
                attrs = []
                scalar = messages[message][proto_name] in SCALARS
                if go_name is None and not scalar and (json_name == "" or "inline" in json_parts[1:]):
                    attrs.append("inline")
                elif json_name and json_name != proto_name:
                    attrs.append(f"json={json_name}")
                if scalar and go_type.startswith("*"):
                    attrs.append("ptr")
                elif scalar and not omit and (not go_type.startswith("[]") or go_type == "[]byte"):
                    attrs.append("always")
                elif go_type.split(".")[-1] in ("Time", "MicroTime") and "omitzero" not in json_parts[1:]:
                    # A Time struct: omitempty does not leave it out, its zero is written null.
                    attrs.append("always")
                if attrs:
                    lines.append(f"{full} {proto_name} {' '.join(attrs)}")
    with open(os.path.join(out, "json-fields.txt"), "w") as f:
        f.write("# Generated by generate.py from the Kubernetes Go types: see its docstring.\n")
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
