"""Compare our flatc bindings (src/schema_generated.rs) with the official schema's bindings that
ship in the ai-edge-litert wheel (ai_edge_litert/schema_py_generated.py).

For every table of our subset schema: each field's vtable offset (VT_* const, i.e. the field id)
equals the offset the official bindings read it at. For every enum and union: each named value
equals the official one. Prints a JSON report; exits 1 on any mismatch. Run by tests/schema.rs.
"""
import json
import re
import sys

from ai_edge_litert import schema_py_generated as official


def norm(name):
    return name.replace("_", "").upper()


def ours(path):
    text = open(path).read()
    tables, enums = {}, {}
    # Table field offsets: `impl<'a> Name<'a> { pub const VT_FIELD: ::flatbuffers::VOffsetT = N;`
    for m in re.finditer(r"impl<'a> (\w+)<'a> \{\n((?:  pub const VT_\w+: ::flatbuffers::VOffsetT = \d+;\n)+)", text):
        fields = dict(re.findall(r"VT_(\w+): ::flatbuffers::VOffsetT = (\d+);", m.group(2)))
        tables[m.group(1)] = {norm(k): int(v) for k, v in fields.items()}
    # Enum and union values: `impl Name { pub const MEMBER: Self = Self(V); ...`
    for m in re.finditer(r"\nimpl (\w+) \{\n((?:  pub const \w+: Self = Self\(-?\d+\);\n)+)", text):
        enums[m.group(1)] = {k: int(v) for k, v in re.findall(r"pub const (\w+): Self = Self\((-?\d+)\);", m.group(2))}
    return tables, enums


def official_sources():
    """Source of each class of the official bindings, split once (inspect.getsource re-parses
    the whole module per call, which is slow on this 10k-line file)."""
    text = open(official.__file__).read()
    parts = re.split(r"^class (\w+)\(object\):\n", text, flags=re.M)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def official_table(src):
    fields = {}
    for m in re.finditer(r"def (\w+)\(self[^)]*\):\n\s+o = flatbuffers\.number_types\.UOffsetTFlags\.py_type\(self\._tab\.Offset\((\d+)\)\)", src):
        name = m.group(1)
        if name.endswith("Length") or name.endswith("IsNone") or name.endswith("AsNumpy"):
            continue
        fields[norm(name)] = int(m.group(2))
    return fields


def main():
    tables, enums = ours(sys.argv[1])
    sources = official_sources()
    problems, n_fields, n_values = [], 0, 0
    for table, fields in tables.items():
        cls = getattr(official, table, None)
        if cls is None:
            problems.append(f"table {table} not in the official schema")
            continue
        theirs = official_table(sources.get(table, ""))
        for field, offset in fields.items():
            n_fields += 1
            if theirs.get(field) != offset:
                problems.append(f"{table}.{field}: ours at vtable offset {offset}, official {theirs.get(field)}")
    for enum, values in enums.items():
        cls = getattr(official, enum, None)
        if cls is None:
            problems.append(f"enum {enum} not in the official schema")
            continue
        for name, value in values.items():
            n_values += 1
            if getattr(cls, name, None) != value:
                problems.append(f"{enum}.{name}: ours {value}, official {getattr(cls, name, None)}")
    print(json.dumps({"tables": len(tables), "fields": n_fields, "enums": len(enums), "values": n_values, "problems": problems}))
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
