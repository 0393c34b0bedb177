"""Code metrics of src/twostream for issue 13: lines, non-blank lines, function-level imports
(imports whose nearest scope is a function; "with a reason" when a ``# deferred: why`` comment
sits on the import's line or the line above it) and import cycles between package modules.

    python bench/code_metrics.py [REPO] [--list]   (default: this checkout; --list names the
                                                    function-level imports without a reason)
"""
import ast, sys
from pathlib import Path
import networkx as nx
argv = [a for a in sys.argv[1:] if a != "--list"]
src = Path(argv[0] if argv else Path(__file__).resolve().parents[1]) / "src"
pkg = src / "twostream"
def modname(f):
    parts = list(f.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__": parts = parts[:-1]
    return ".".join(parts)
mods = {modname(f): f for f in pkg.rglob("*.py")}
G = nx.DiGraph(); func_imports = 0; lines = nonblank = 0; unexplained = []
for m, f in mods.items():
    text = f.read_text(); lines += len(text.splitlines()); nonblank += sum(1 for l in text.splitlines() if l.strip())
    tree = ast.parse(text)
    is_pkg = f.name == "__init__.py"
    text_lines = text.splitlines()
    def count(node, in_fn):
        global func_imports
        for c in ast.iter_child_nodes(node):
            if isinstance(c, (ast.Import, ast.ImportFrom)) and in_fn:
                func_imports += 1
                near = text_lines[c.lineno - 1] + (text_lines[c.lineno - 2] if c.lineno > 1 else "")
                if "# deferred:" not in near: unexplained.append(f"{f.relative_to(src.parent)}:{c.lineno}")
            count(c, in_fn or isinstance(c, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))
    count(tree, False)
    for n in ast.walk(tree):
        targets = []
        if isinstance(n, ast.Import): targets = [a.name for a in n.names]
        elif isinstance(n, ast.ImportFrom):
            if n.level:
                base = m.split(".") if is_pkg else m.split(".")[:-1]
                base = base[: len(base) - (n.level - 1)]
                mod = ".".join(base + ([n.module] if n.module else []))
            else: mod = n.module or ""
            targets = [mod] + [f"{mod}.{a.name}" for a in n.names]
        for t in targets:
            while t and t not in mods: t = t.rpartition(".")[0]
            if t and t != m: G.add_edge(m, t)
cycles = [c for c in nx.simple_cycles(G)]
sccs = [sorted(c) for c in nx.strongly_connected_components(G) if len(c) > 1]
print(f"files {len(mods)} lines {lines} non-blank {nonblank} function-level imports {func_imports}"
      f" (with a '# deferred:' reason {func_imports - len(unexplained)}, without {len(unexplained)})")
if "--list" in sys.argv:
    for u in unexplained: print("  no reason:", u)
print(f"import cycles (simple cycles) {len(cycles)}; strongly connected groups {len(sccs)}")
for c in sccs: print("  scc:", c)
for c in sorted(cycles, key=len)[:15]: print("  cycle:", " -> ".join(c + [c[0]]))
