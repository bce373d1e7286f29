"""The imported topology as YAML text: a header (inputs, notes, ``# unsupported:`` list),
then the document, short lists in flow style, each preset rule commented with its reason."""

from __future__ import annotations

import io
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from sim.importer.pipeline import Imported

WIDTH = 100


def _node(value: Any) -> Any:
    if isinstance(value, dict):
        out = CommentedMap()
        for k, v in value.items():
            out[k] = _node(v)
        return out
    if isinstance(value, list):
        seq = CommentedSeq(_node(v) for v in value)
        if all(not isinstance(v, dict | list) for v in value):
            seq.fa.set_flow_style()
        return seq
    return value


def _preset(doc: dict[str, Any]) -> CommentedMap:
    preset = doc["preset"]
    rules = CommentedSeq()
    for i, rule in enumerate(preset["rules"]):
        item = CommentedMap(action=rule["action"], pattern=rule["pattern"])
        item.fa.set_flow_style()
        rules.append(item)
        rules.yaml_add_eol_comment(rule["why"], i)
    return CommentedMap(source=preset["source"], rules=rules)


def _comment_block(title: str, lines: list[str]) -> list[str]:
    if not lines:
        return [f"# {title}: none"]
    return [f"# {title}:"] + [f"#   - {line}" for line in lines]


def header(result: Imported) -> str:
    """The comment block that heads an imported topology: its inputs, notes and what was not
    modelled.
    """
    inp = result.inputs
    lines = [
        "# Imported by `virtchaos import-units`; re-run the import instead of editing by hand.",
        f"# units:   {', '.join(str(p) for p in inp.units)}",
        f"# presets: {', '.join(str(p) for p in result.preset_files) or '(none)'}",
        f"# configs: {inp.conf or '(none)'}",
        f"# mapping: {inp.mapping}",
        "#",
        *_comment_block("notes", result.notes),
        "#",
        *_comment_block("unsupported", [str(u) for u in result.unsupported]),
    ]
    return "\n".join(lines) + "\n"


def to_yaml(result: Imported) -> str:
    """The whole output file: header comments and the topology document."""
    doc = dict(result.topology)
    body = _node({k: v for k, v in doc.items() if k != "preset"})
    body["preset"] = _preset(doc)
    yaml = YAML(typ="rt", pure=True)
    yaml.width = WIDTH
    yaml.indent(mapping=2, sequence=4, offset=2)
    buf = io.StringIO()
    yaml.dump(body, buf)
    return header(result) + "\n" + buf.getvalue()
