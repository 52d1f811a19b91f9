"""One bounded YAML loader for every configuration file: site files, profiles, deployments.

``yaml.safe_load`` is safe against code, not against size. A 1 kB file can hold aliases that
stand for 10**9 nodes ("billion laughs"): PyYAML builds them as shared objects in
milliseconds, and the first walk over the tree (``${VAR}`` expansion, validation) then
expands them until memory runs out. A 50 MB "site file" is read whole. Configuration is small
and hand-written, so this loader refuses, with the file named and what to do:

- a file of more than :data:`MAX_CONFIG_BYTES` (at most that many bytes plus one are read, so
  a FIFO or device given by mistake is bounded too);
- a mapping with the same key twice (PyYAML silently keeps the last: an edit hidden in a file
  copied from a template);
- a document whose aliases expand to more than :data:`MAX_CONFIG_NODES` nodes, or an alias
  inside its own anchor (a structure without end). Nodes are counted on the composed graph
  before any Python object is built, once per distinct node, so the count costs no more than
  the file's own size, whatever the aliases would expand to.

Ordinary anchors, aliases and ``<<`` merge keys keep working.
"""

from __future__ import annotations

from collections.abc import Hashable
from pathlib import Path

import yaml

# 1 MiB: the largest file shipped here is under 10 kB, so a bigger one is not configuration.
MAX_CONFIG_BYTES = 1 << 20
# Nodes once every alias is expanded: a site file has about 200, the profiles file about 100.
MAX_CONFIG_NODES = 100_000

_MERGE_TAG = "tag:yaml.org,2002:merge"


class ConfigFileError(ValueError):
    """A configuration file is unreadable, too large, not YAML, or breaks a bound above.

    The message names the file (or the environment variable a value came from).
    """


class UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader (plain YAML types only) that rejects a key given twice in one mapping."""


def _construct_unique_mapping(
    loader: UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False
) -> dict[Hashable, object]:
    """Build a mapping as SafeLoader does, after checking that no key occurs twice."""
    seen: set[Hashable] = set()
    for key_node, _ in node.value:
        if key_node.tag == _MERGE_TAG:  # '<<: *base' merges; the explicit keys override it
            continue
        key = loader.construct_object(key_node, deep=deep)
        if isinstance(key, Hashable) and key in seen:
            raise yaml.constructor.ConstructorError(
                "while reading a mapping",
                node.start_mark,
                f"duplicate key {key!r}",
                key_node.start_mark,
            )
        if isinstance(key, Hashable):
            seen.add(key)
    return loader.construct_mapping(node, deep)


UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping
)


class _SelfReference(Exception):
    """An alias occurs inside the node its anchor names."""

    def __init__(self, node: yaml.Node) -> None:
        super().__init__(node)
        self.node = node


def _expanded_size(node: yaml.Node, sizes: dict[int, int], open_nodes: set[int]) -> int:
    """How many nodes ``node`` stands for with every alias expanded (memoised per node)."""
    known = sizes.get(id(node))
    if known is not None:
        return known
    if id(node) in open_nodes:
        raise _SelfReference(node)
    open_nodes.add(id(node))
    children: list[yaml.Node] = []
    if isinstance(node, yaml.SequenceNode):
        children = list(node.value)
    elif isinstance(node, yaml.MappingNode):
        children = [part for pair in node.value for part in pair]
    size = 1 + sum(_expanded_size(child, sizes, open_nodes) for child in children)
    open_nodes.discard(id(node))
    sizes[id(node)] = size
    return size


def _check_expansion(node: yaml.Node, source: str, max_nodes: int) -> None:
    """Refuse a document that its aliases expand past ``max_nodes``, or that contains itself."""
    try:
        size = _expanded_size(node, {}, set())
    except _SelfReference as exc:
        line = exc.node.start_mark.line + 1
        raise ConfigFileError(
            f"{source}: line {line}: an alias refers to itself from inside its own anchor, "
            "which makes a structure without end; write that part out instead"
        ) from None
    if size > max_nodes:
        raise ConfigFileError(
            f"{source}: its aliases expand it to {size} nodes, more than the {max_nodes} "
            "nodes a configuration file may have (a guard against alias bombs); write the "
            "repeated parts out, or repeat fewer of them by alias"
        )


def _one_line(error: yaml.YAMLError) -> str:
    """PyYAML's error on one line, e.g. "duplicate key 'name' at line 9, column 1, while
    reading a mapping from line 1": the command line prints errors as one line."""
    if not isinstance(error, yaml.MarkedYAMLError):
        return " ".join(str(error).split())
    problem = error.problem or "error"
    if error.problem_mark is not None:
        mark = error.problem_mark
        problem += f" at line {mark.line + 1}, column {mark.column + 1}"
    if error.context:
        start = error.context_mark
        problem += f", {error.context}" + (f" from line {start.line + 1}" if start else "")
    return problem


def parse_config_text(text: str, source: str, max_nodes: int = MAX_CONFIG_NODES) -> object:
    """Parse one YAML document with the bounds above; ``source`` names it in errors."""
    loader = UniqueKeyLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node, source, max_nodes)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise ConfigFileError(f"{source}: not valid YAML ({_one_line(exc)})") from exc
    except RecursionError:
        raise ConfigFileError(
            f"{source}: nested too deeply for a configuration file; flatten it"
        ) from None
    finally:
        loader.dispose()


def read_config_text(path: Path, what: str, max_bytes: int = MAX_CONFIG_BYTES) -> str:
    """The UTF-8 text of ``path``, refusing more than ``max_bytes``; ``what`` is its kind."""
    try:
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise ConfigFileError(f"cannot read {what} {path}: {exc.strerror}") from exc
    if len(data) > max_bytes:
        raise ConfigFileError(
            f"{path}: {what} has more than the {max_bytes} bytes allowed for a configuration "
            f"file; a {what} is hand-written and a few kB, so check that this is the right file"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigFileError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc


def load_config_file(
    path: Path,
    what: str,
    *,
    max_bytes: int = MAX_CONFIG_BYTES,
    max_nodes: int = MAX_CONFIG_NODES,
) -> object:
    """Read and parse one configuration file (``what``: "site file", "profiles file", ...)
    within the size, duplicate-key and alias bounds; raise ConfigFileError naming it."""
    return parse_config_text(read_config_text(path, what, max_bytes), str(path), max_nodes)
