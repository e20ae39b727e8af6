"""Shape of the code, the figures of issue 15: files over 450 lines, functions over 60 lines.

    .venv/bin/python benchmarks/code_shape.py [--list]

Counts the project's Python (functions, shared, localcloud, cli, deploy, tests, benchmarks);
a function's length is its source span (decorators to last line, nested functions included).
A function over 60 lines whose body carries a comment with "long:" explaining why is counted
as explained, not as a violation.
"""
import argparse
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ("functions", "shared", "localcloud", "cli", "deploy", "tests", "benchmarks")
MAX_FILE, MAX_FUNCTION = 450, 60


def python_files():
    for folder in FOLDERS:
        yield from sorted(p for p in (ROOT / folder).rglob("*.py") if ".venv" not in p.parts)


def long_functions(path: Path, text: str):
    lines = text.splitlines()
    for node in ast.walk(ast.parse(text, str(path))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            span = node.end_lineno - first + 1
            if span > MAX_FUNCTION:
                explained = any("long:" in line for line in lines[node.lineno - 1:node.end_lineno])
                yield node.name, node.lineno, span, explained


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="name every file and function counted")
    args = parser.parse_args()
    big_files, functions = [], []
    for path in python_files():
        text = path.read_text(encoding="utf-8")
        rel = path.relative_to(ROOT)
        count = len(text.splitlines())
        if count > MAX_FILE:
            big_files.append((count, str(rel)))
        functions += [(span, f"{rel}:{line} {name}", explained)
                      for name, line, span, explained in long_functions(path, text)]
    unexplained = [f for f in functions if not f[2]]
    print(f"files over {MAX_FILE} lines      {len(big_files)}")
    print(f"functions over {MAX_FUNCTION} lines   {len(functions)} ({len(unexplained)} without a 'long:' comment)")
    if args.list:
        for count, name in sorted(big_files, reverse=True):
            print(f"  file     {count:5d}  {name}")
        for span, name, explained in sorted(functions, reverse=True):
            print(f"  function {span:5d}  {name}{'' if not explained else '  (explained)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
