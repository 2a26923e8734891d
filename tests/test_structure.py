"""The package's shape: one-way imports, a light `import tinygrad_bn`, an engine you can read.

These are claims docs/index.md makes about the layout; each test fails if the
code stops matching them.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import tinygrad_bn

PACKAGE = Path(tinygrad_bn.__file__).resolve().parent
ROOT = PACKAGE.name
# What `import tinygrad_bn` must not load: the tools built on the engine, and heavy libraries.
LAZY = ["tinygrad_bn.viz", "tinygrad_bn.gradcheck", "tinygrad_bn.testing", "tinygrad_bn.train",
        "tinygrad_bn.data", "tinygrad_bn.experiments", "tinygrad_bn.compat", "tinygrad_bn._memory",
        "graphviz", "hypothesis", "matplotlib", "numba", "subprocess"]
ENGINE_FILES = ["tensor.py", "tensor_methods.py", "ops.py", "autograd/function.py",
                "autograd/graph.py", "autograd/grad_mode.py"]
MAX_FUNCTION_LINES = 40  # "fits on one screen"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _top_level_imports(tree: ast.Module):
    """Import statements that run at import time: top level, or inside top-level if/try blocks."""
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If):
            if not (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"):
                stack += node.body + node.orelse
        elif isinstance(node, ast.Try):
            stack += node.body + node.orelse + node.finalbody + [s for h in node.handlers for s in h.body]


def import_graph() -> dict[str, set[str]]:
    """module -> the package modules whose code runs when it is imported (module level only).

    Importing a.b.c also runs a.b's __init__, except when a.b is an ancestor of the
    importing module: Python initialises parents before children, so that init is
    already under way and is not run again.
    """
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        for node in _top_level_imports(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                base = node.module or ""
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for target in targets:
                parts = target.split(".")
                for k in range(1, len(parts) + 1):
                    dep = ".".join(parts[:k])
                    if dep not in modules or dep == name:
                        continue
                    if k < len(parts) and name.startswith(dep + "."):
                        continue  # an ancestor package passed through: its init is already running
                    graph[name].add(dep)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules, or None (iterative depth-first search)."""
    colour = dict.fromkeys(graph, 0)  # 0 unseen, 1 on the current path, 2 done
    for start in sorted(graph):
        if colour[start]:
            continue
        path, stack = [start], [iter(sorted(graph[start]))]
        colour[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                colour[path.pop()] = 2
                stack.pop()
            elif colour[nxt] == 1:
                return path[path.index(nxt):] + [nxt]
            elif colour[nxt] == 0:
                colour[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph[nxt])))
    return None


def test_module_level_imports_have_no_cycle():
    graph = import_graph()
    assert graph["tinygrad_bn.ops"] >= {"tinygrad_bn.tensor", "tinygrad_bn.autograd.function"}
    # kernels sit above functional, which finds them by name in the registry
    assert "tinygrad_bn.functional" in graph["tinygrad_bn.kernels.batchnorm"]
    assert "tinygrad_bn.kernel_registry" in graph["tinygrad_bn.functional.norm"]
    assert not any(d.startswith("tinygrad_bn.kernels") for d in graph["tinygrad_bn.functional.norm"])
    assert find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph))}"


def test_the_cycle_finder_finds_a_cycle_through_a_package_init():
    # The shape the kernel registry avoids: functional -> kernels (package) -> kernel -> functional.
    graph = {"f": {"k"}, "k": {"k.bn"}, "k.bn": {"f"}, "t": set()}
    assert find_cycle(graph) == ["f", "k", "k.bn", "f"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_engine_layers_import_only_downwards():
    graph = import_graph()
    tools = ("viz", "gradcheck", "testing", "train", "data", "experiments", "compat", "commands", "cli")
    for name, deps in graph.items():
        if name.startswith(("tinygrad_bn.tensor", "tinygrad_bn.autograd", "tinygrad_bn.ops")):
            assert not any(d.startswith(f"{ROOT}.{t}") for d in deps for t in tools), (name, deps)
    assert graph["tinygrad_bn.tensor"] == set(), "tensor.py is the bottom: it imports nothing of the package"


def test_import_tinygrad_bn_loads_only_the_engine_and_changes_nothing():
    code = ("import sys, tinygrad_bn; "
            f"print([m for m in {LAZY!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_tool_modules_load_on_first_attribute_access():
    code = ("import sys, tinygrad_bn; assert 'tinygrad_bn.viz' not in sys.modules; "
            "f = tinygrad_bn.viz.draw_graph; assert 'tinygrad_bn.viz' in sys.modules; "
            "print(tinygrad_bn.gradcheck.gradcheck.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "gradcheck"
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        tinygrad_bn.nonsense  # noqa: B018


@pytest.mark.parametrize("relative", ENGINE_FILES)
def test_every_engine_function_fits_on_one_screen(relative):
    tree = ast.parse((PACKAGE / relative).read_text())
    long = [(n.name, n.end_lineno - n.lineno + 1) for n in ast.walk(tree)
            if isinstance(n, ast.FunctionDef) and n.end_lineno - n.lineno + 1 > MAX_FUNCTION_LINES]
    assert long == []


def test_no_function_has_code_after_its_return():
    # A method indented under a module-level function after its `return` is silently dead
    # (MatMul.fast_backward once was, and matmul ran its slower Tensor-op backward).
    dead = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                ends = [i for i, s in enumerate(node.body) if isinstance(s, ast.Return | ast.Raise)]
                if ends and ends[0] < len(node.body) - 1:
                    dead.append(f"{path.relative_to(PACKAGE)}:{node.name}")
    assert dead == []
