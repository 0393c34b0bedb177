"""Code metrics of src/twostream for issue 13: lines, non-blank lines, function-level imports
(imports whose nearest scope is a function) and import cycles between package modules.

    python bench/code_metrics.py [REPO]      (default: this checkout)
"""
import ast, sys
from pathlib import Path
import networkx as nx
src = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[1]) / "src"
pkg = src / "twostream"
def modname(f):
    parts = list(f.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__": parts = parts[:-1]
    return ".".join(parts)
mods = {modname(f): f for f in pkg.rglob("*.py")}
G = nx.DiGraph(); func_imports = 0; lines = nonblank = 0
for m, f in mods.items():
    text = f.read_text(); lines += len(text.splitlines()); nonblank += sum(1 for l in text.splitlines() if l.strip())
    tree = ast.parse(text)
    is_pkg = f.name == "__init__.py"
    def count(node, in_fn):
        global func_imports
        for c in ast.iter_child_nodes(node):
            if isinstance(c, (ast.Import, ast.ImportFrom)) and in_fn: func_imports += 1
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
print(f"files {len(mods)} lines {lines} non-blank {nonblank} function-level imports {func_imports}")
print(f"import cycles (simple cycles) {len(cycles)}; strongly connected groups {len(sccs)}")
for c in sccs: print("  scc:", c)
for c in sorted(cycles, key=len)[:15]: print("  cycle:", " -> ".join(c + [c[0]]))
