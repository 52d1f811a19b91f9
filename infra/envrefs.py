"""``${NAME}`` and ``${NAME:-default}`` in configuration files (site files, deployments).

Paths and URLs differ per cluster and stay out of the repository: the files name environment
variables instead. Expansion happens on parsed values, not raw text, so a comment may show
``${NAME}`` and a value from the environment cannot change the YAML structure.

Expansion copies the tree, so a value shared by YAML aliases is copied once per use: give it
only trees read with ``infra.yamlfiles`` (which refuses aliases expanding past a node budget),
never a raw ``yaml.safe_load`` result.
"""

from __future__ import annotations

import os
import re

_ENV_REF = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?::-(?P<default>[^}]*))?\}")


class UnsetVariable(ValueError):
    """A value names an environment variable that is not set and has no default."""


def expand_env_refs(value: object, where: str = "") -> object:
    """Expand references in every string of a parsed file; errors name the key path."""
    if isinstance(value, str):

        def repl(match: re.Match[str]) -> str:
            found = os.environ.get(match["name"])
            if found:
                return found
            if match["default"] is not None:
                return match["default"]
            place = f"{where}: " if where else ""
            raise UnsetVariable(f"{place}environment variable {match['name']} is not set")

        return _ENV_REF.sub(repl, value)
    if isinstance(value, dict):
        return {
            k: expand_env_refs(v, f"{where}.{k}" if where else str(k)) for k, v in value.items()
        }
    if isinstance(value, list):
        return [expand_env_refs(v, f"{where}.{i}") for i, v in enumerate(value)]
    return value
