"""The engine reads as layers, and imports only run downwards (../shared/DESIGN.md, Layout):

    interfaces   pages/, app.py, core/cli, core/gateway      -> only core.services (+ access, errors, config,
                                                                  event_loop)
    services     core/services                               the one door: access, frozen views
    generate     core/generate.py                            the one flow of a generation
    middle       providers, billing, analytics, endpoints, breakeven, optimize, budgets, alerts, keys, demo
    bottom       config, errors, redaction, money, usage, users, access, db, catalog, event_loop

Also: core never imports streamlit; billing never imports analytics; interfaces never open a database session; each
engine part is constructed in one place, the services container.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYER = {
    **dict.fromkeys(
        ("config", "errors", "redaction", "money", "usage", "users", "access", "db", "catalog", "event_loop"), 0
    ),
    **dict.fromkeys(
        (
            "providers",
            "billing",
            "analytics",
            "endpoints",
            "breakeven",
            "optimize",
            "budgets",
            "alerts",
            "keys",
            "demo",
        ),
        1,
    ),
    "generate": 2,
    "services": 3,
    **dict.fromkeys(("cli", "gateway", "__main__"), 4),
}
# event_loop: how the gateway runs the engine's calls on its event loop (infrastructure, as config is)
INTERFACE_MAY_IMPORT = {"services", "access", "errors", "config", "event_loop", "cli"}


def _group(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] in ("pages", "app"):
        return "pages"
    if parts[0] != "core" or len(parts) == 1:
        return None
    return parts[1]


def _files() -> list[Path]:
    files = [*ROOT.glob("core/**/*.py"), *ROOT.glob("pages/**/*.py"), ROOT / "app.py"]
    return [f for f in files if "migrations/versions" not in f.as_posix()]


def _module(path: Path) -> str:
    mod = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    return mod.removesuffix(".__init__")


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


EDGES = [(f, _group(_module(f)), n, _group(n)) for f in _files() for n in _imports(f)]


def test_every_core_package_has_a_layer() -> None:
    groups = {g for _, g, _, _ in EDGES if g not in (None, "pages")}
    assert groups <= set(LAYER), sorted(groups - set(LAYER))


def test_imports_only_run_downwards() -> None:
    upward = [
        f"{f.relative_to(ROOT)} imports {name}"
        for f, src, name, dst in EDGES
        if src not in (None, "pages") and dst is not None and dst != src and LAYER[dst] > LAYER[src]
    ]
    assert not upward, upward


def test_billing_ends_at_the_ledger() -> None:
    assert not [f for f, src, _, dst in EDGES if src == "billing" and dst == "analytics"]


def test_interfaces_use_only_the_services_door() -> None:
    iface = [
        f"{f.relative_to(ROOT)} imports {name}"
        for f, src, name, dst in EDGES
        if (src in ("pages", "cli", "gateway"))
        and dst is not None
        and dst not in ("pages", src)
        and dst not in INTERFACE_MAY_IMPORT
    ]
    assert not iface, iface


def test_core_never_imports_streamlit() -> None:
    assert not [f for f, src, name, _ in EDGES if src not in (None, "pages") and name.split(".")[0] == "streamlit"]


@pytest.mark.parametrize("folder", ["pages", "core/cli", "core/gateway", "app.py"])
def test_interfaces_never_open_a_session(folder: str) -> None:
    paths = [ROOT / folder] if folder.endswith(".py") else list((ROOT / folder).glob("**/*.py"))
    for path in paths:
        source = path.read_text()
        assert ".session()" not in source and "session_factory" not in source, path


def _is_services(node: ast.expr) -> bool:
    """`services`, `svc`, `services()` or `x.services`: the container, as the interfaces name it."""
    if isinstance(node, ast.Call):
        node = node.func
    return (isinstance(node, ast.Name) and node.id in ("services", "svc")) or (
        isinstance(node, ast.Attribute) and node.attr == "services"
    )


@pytest.mark.parametrize("folder", ["pages", "core/cli", "core/gateway"])
def test_interfaces_call_services_not_the_parts_behind_them(folder: str) -> None:
    """The container's parts (the ledger, the flow, the database, the analytics copy, the providers, the endpoints
    manager) are for the services; an interface reaching for one would bypass the access rules."""
    behind = {"billing", "flow", "db", "analytics", "providers", "endpoint_manager"}
    reached = [
        f"{path.relative_to(ROOT)}:{node.lineno} .{node.attr}"
        for path in (ROOT / folder).glob("**/*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Attribute) and node.attr in behind and _is_services(node.value)
    ]
    assert not reached, reached


@pytest.mark.parametrize(
    "part", ["BillingService", "AIProviderFactory", "AnalyticsCopy", "GenerationFlow", "UptimeMeter"]
)
def test_engine_parts_are_built_in_one_place(part: str) -> None:
    """Outside tests and benchmarks, each part is constructed once: by the container (or, for the uptime meter, by the
    endpoints service and the endpoints demo's own clock-driven run)."""
    sites = [
        str(f.relative_to(ROOT))
        for f in _files()
        for node in ast.walk(ast.parse(f.read_text()))
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == part
    ]
    allowed = {
        "UptimeMeter": {"core/services/endpoints.py", "core/demo/endpoints.py"},
    }.get(part, {"core/services/container.py"})
    assert set(sites) <= allowed and len(sites) == len(set(sites)), sites
