"""The import rules of ARCHITECTURE.md, checked on the real tree by parsing it (ast, nothing imported).

The layer rule is read from ARCHITECTURE.md itself (the block of `layer -> layers` lines), so
the document and the check cannot say different things.

Every `import` counts, at module level or inside a function (a lazy import is still a
dependency); only `if TYPE_CHECKING:` blocks are left out. An exception must be listed
below with the reason, never by loosening a rule.
"""
import ast
import functools
import re
import sys
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("functions", "shared", "localcloud", "cli", "deploy")
RULE = re.compile(r"^(\w+)\s+->\s*(.*)$")


def allowed() -> Dict[str, Set[str]]:
    """What each layer may import of the others (itself always), from ARCHITECTURE.md."""
    rules = {}
    for line in (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8").splitlines():
        match = RULE.match(line.strip())
        if match and match.group(1) in LAYERS:
            rules[match.group(1)] = {x.strip() for x in match.group(2).split(",") if x.strip()}
    return rules


# Imports across layers that break a rule, each with its reason; a new one fails the test.
KNOWN_LAYER_BREAKS: Set[Tuple[str, str]] = set()
# Third-party packages the deployed code may import (pyproject `dependencies`, shipped in the layer).
DEPLOYED_DEPS = {"qcloud_cos", "pydantic", "pydantic_core", "flask", "werkzeug", "serverless_wsgi"}
# Known import cycles inside a layer, each with its reason; a new cycle fails the test.
KNOWN_CYCLES: Set[Tuple[str, ...]] = set()


@functools.lru_cache(maxsize=None)
def modules() -> Dict[str, Path]:
    found = {}
    for layer in LAYERS:
        for path in sorted((ROOT / layer).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports(name: str, path: Path) -> Iterator[Tuple[str, int]]:
    """(absolute module name, line) of every import in the file, relative ones resolved."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    skip: Set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _type_checking(node):
            skip.update(id(n) for child in node.body for n in ast.walk(child))
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            yield module, node.lineno
            for alias in node.names:  # `from . import x` imports the module x
                yield f"{module}.{alias.name}", node.lineno


@functools.lru_cache(maxsize=None)
def graph() -> Dict[str, List[Tuple[str, int]]]:
    known = modules()
    edges: Dict[str, List[Tuple[str, int]]] = {}
    for name, path in known.items():
        edges[name] = [(target, line) for target, line in imports(name, path)]
    return edges


def test_architecture_md_states_a_rule_for_every_layer():
    rules = allowed()
    assert set(rules) == set(LAYERS), f"ARCHITECTURE.md gives rules for {sorted(rules)}, layers are {LAYERS}"
    assert all(r <= set(LAYERS) for r in rules.values()) and rules["shared"] == set()


def test_layers_import_only_what_they_may():
    known = modules()
    rules = allowed()
    wrong = []
    for name, targets in graph().items():
        layer = name.split(".")[0]
        for target, line in targets:
            other = target.split(".")[0]
            if other in LAYERS and other != layer and other not in rules[layer] \
                    and (name, target) not in KNOWN_LAYER_BREAKS:
                wrong.append(f"{known[name].relative_to(ROOT)}:{line} imports {target} ({layer} -> {other})")
    assert not wrong, "layer rule broken (see ARCHITECTURE.md):\n" + "\n".join(wrong)
    seen = {(name, target) for name, targets in graph().items() for target, _ in targets}
    assert not KNOWN_LAYER_BREAKS - seen, f"breaks gone, remove them: {sorted(KNOWN_LAYER_BREAKS - seen)}"


def test_deployed_code_imports_only_the_stdlib_and_shipped_dependencies():
    known = modules()
    wrong = []
    for name, targets in graph().items():
        if name.split(".")[0] not in ("shared", "functions"):
            continue
        for target, line in targets:
            top = target.split(".")[0]
            if top in LAYERS or top in sys.stdlib_module_names or top in DEPLOYED_DEPS or top == "__future__":
                continue
            wrong.append(f"{known[name].relative_to(ROOT)}:{line} imports {target}")
    assert not wrong, "deployed code needs a dependency the SCF layer does not ship:\n" + "\n".join(wrong)


def test_no_import_cycles():
    known = set(modules())
    # an edge to one's own package is not a cycle: the package is always imported first anyway
    edges = {name: sorted({t for t, _ in targets if t in known and t != name and not name.startswith(t + ".")})
             for name, targets in graph().items()}
    cycles: Set[Tuple[str, ...]] = set()

    def visit(node: str, stack: List[str], on_stack: Set[str], done: Set[str]) -> None:
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, []):
            if nxt in on_stack:
                cycle = stack[stack.index(nxt):]
                start = cycle.index(min(cycle))
                cycles.add(tuple(cycle[start:] + cycle[:start]))
            elif nxt not in done:
                visit(nxt, stack, on_stack, done)
        stack.pop()
        on_stack.discard(node)
        done.add(node)

    done: Set[str] = set()
    for name in sorted(edges):
        if name not in done:
            visit(name, [], set(), done)
    new = sorted(cycles - KNOWN_CYCLES)
    assert not new, "import cycles:\n" + "\n".join(" -> ".join(c + (c[0],)) for c in new)
    assert not KNOWN_CYCLES - cycles, f"cycles gone, remove them from KNOWN_CYCLES: {sorted(KNOWN_CYCLES - cycles)}"


def test_the_checker_sees_lazy_relative_and_type_checking_imports(tmp_path):
    """The rules are only as good as the parser: prove it on a small file."""
    pkg = tmp_path / "localcloud"
    pkg.mkdir()
    source = ("from typing import TYPE_CHECKING\nfrom . import cos\nfrom .ci import x\n"
              "if TYPE_CHECKING:\n    from cli import common\n"
              "def f():\n    from deploy import checks\n")
    (pkg / "mod.py").write_text(source)
    found = {t for t, _ in imports("localcloud.mod", pkg / "mod.py")}
    assert {"localcloud.cos", "localcloud.ci", "deploy.checks"} <= found
    assert "cli.common" not in found and "cli" not in found


# cli/cmd_*.py are commands, not libraries (ARCHITECTURE.md: they parse, call library modules, print).
KNOWN_COMMAND_IMPORTS: Set[Tuple[str, str]] = set()


def test_no_command_imports_another():
    commands = {name for name in modules() if name.startswith("cli.cmd_")}
    found = {(name, target) for name in commands for target, _ in graph()[name]
             if target in commands and target != name}
    new = sorted(found - KNOWN_COMMAND_IMPORTS)
    assert not new, "a command imports another (move the shared part to a cli library module):\n" + \
        "\n".join(f"{a} -> {b}" for a, b in new)
    assert not KNOWN_COMMAND_IMPORTS - found, f"gone, remove them: {sorted(KNOWN_COMMAND_IMPORTS - found)}"


# localcloud/: each service is a backend (plain state and rules) with thin HTTP fronts, as moto splits
# models.py / responses.py; `LocalCloud` (cloud.py) only composes them (ARCHITECTURE.md, "Where each concept lives").
BACKENDS = ("localcloud.cos", "localcloud.ci", "localcloud.scfbackend", "localcloud.clsbackend")
FRONTS = ("localcloud.cloud", "localcloud.server", "localcloud.replies", "localcloud.control", "localcloud.cos_http",
          "localcloud.ci_http", "localcloud.scfapi", "localcloud.scfinvoke", "localcloud.scf_http", "localcloud.clsapi",
          "localcloud.memory")


def test_local_cloud_backends_import_no_front_and_not_the_composer():
    known, edges = set(modules()), graph()
    wrong = []
    for backend in BACKENDS:
        seen, todo = set(), [backend]
        while todo:  # everything the backend needs, directly or not
            name = todo.pop()
            for target, line in edges.get(name, []):
                if target in FRONTS:
                    wrong.append(f"{backend}: {name}:{line} imports {target}")
                if target in known and target not in seen and target.startswith("localcloud."):
                    seen.add(target)
                    todo.append(target)
    assert not wrong, "a backend reaches an HTTP front or LocalCloud (pass it what it needs instead):\n" + \
        "\n".join(wrong)
