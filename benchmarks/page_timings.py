"""Benchmark: how long each page takes to draw in a real browser, on the first visit and warm (issue 17's goal: warm
within 1.5 s and first within 3 s at the demo's 200,000 events).

    python benchmarks/page_timings.py                 # 200,000 events (DEMO_ROWS), admin and PM
    python benchmarks/page_timings.py --rows 20000 --json

Steps: build (or reuse) a demo database of N events and its analytics store in benchmarks/.cache/pages-N/ (as
`make demo` does), start `streamlit run app.py` on it in local mode, and for each role open the app in Debian's
chromium (never a downloaded browser), then click every page the role sees in the sidebar: first visit, then three
more rounds (warm; each visit comes from another page). A visit's time runs from the click until the page's title is
drawn and Streamlit reports its script finished. "start" is the first page load after the server started.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.access import PAGES  # noqa: E402
from tests.e2e.server import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, streamlit_server  # noqa: E402

TITLES = {
    "home": "Overview",
    "playground": "Playground",
    "spend": "Spend",
    "ledger": "Ledger",
    "budgets": "Budgets & alerts",
    "breakeven": "Break-even",
    "endpoints": "Endpoints",
    "models": "Models & pricing",
    "savings": "Savings",
    "pricing_lab": "Pricing lab",
    "keys": "API keys",
}
GOAL_WARM_S, GOAL_FIRST_S = 1.5, 3.0
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'


def demo_env(rows: int) -> dict[str, str]:
    """A demo database of `rows` events and its synced analytics store, built once and reused."""
    folder = ROOT / "benchmarks" / ".cache" / f"pages-{rows}"
    folder.mkdir(parents=True, exist_ok=True)
    env = {
        "DATABASE_URL": f"sqlite:///{folder / 'app.db'}",
        "ANALYTICS_PATH": str(folder / "analytics.duckdb"),
        "HF_ENDPOINTS_API_URL": "local",
    }
    full = {**os.environ, **env}
    for step in (
        ["init"],
        ["demo", "--rows", str(rows), "--if-empty", "--with-endpoints"],
        ["spend", "sync"],
    ):
        subprocess.run([sys.executable, "-m", "core", *step], cwd=ROOT, env=full, check=True, capture_output=True)
    return env


def visit(page: Any, title: str) -> float:
    """Click `title` in the sidebar; seconds until its title is drawn and the script run has finished."""
    start = time.perf_counter()
    page.locator('[data-testid="stSidebarNav"]').get_by_text(title, exact=True).click()
    page.get_by_role("heading", name=title).first.wait_for(timeout=120_000)
    page.wait_for_selector(IDLE, timeout=120_000)
    return time.perf_counter() - start


def time_role(browser: Any, base: str, role: str, rounds: int) -> dict[str, Any]:
    """First and warm visits of every page `role` sees, on a server started for this role (cold caches)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    start = time.perf_counter()
    page.goto(base)
    page.wait_for_selector("h1", timeout=120_000)
    page.wait_for_selector(IDLE, timeout=120_000)
    landing = time.perf_counter() - start
    names = [n for n in TITLES if n in PAGES[role]]
    landing_title = page.locator("h1").first.inner_text().strip()
    first: dict[str, float] = {}
    # the landing page was drawn on load: visit another page first so every click changes page
    order = [n for n in names if TITLES[n] != landing_title] + [n for n in names if TITLES[n] == landing_title]
    for name in order:
        first[name] = visit(page, TITLES[name])
    warm: dict[str, list[float]] = {n: [] for n in names}
    for _ in range(rounds):
        for name in order:
            warm[name].append(visit(page, TITLES[name]))
    context.close()
    return {
        "role": role,
        "start_s": round(landing, 2),
        "landing": landing_title,
        "pages": {n: {"first_s": round(first[n], 2), "warm_s": round(statistics.median(warm[n]), 2)} for n in names},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=int(os.environ.get("DEMO_ROWS", 200_000)))
    ap.add_argument("--roles", default="admin,pm", help="comma-separated roles to time (default admin,pm)")
    ap.add_argument("--rounds", type=int, default=3, help="warm visits per page (median; default 3)")
    ap.add_argument("--plain-start", action="store_true", help="`streamlit run app.py`, not serve_app.py (unwarmed)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    env = demo_env(args.rows)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    results = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        for role in args.roles.split(","):
            # a fresh server per role (cold caches), started as `make run` starts it (unless --plain-start)
            with streamlit_server({**env, "LOCAL_USER_EMAIL": role}, warm=not args.plain_start) as base:
                results.append(time_role(browser, base, role, args.rounds))
        browser.close()
    if args.json:
        print(json.dumps({"rows": args.rows, "results": results}, indent=2))
        return
    print(f"Page timings at {args.rows:,} demo events (chromium; warm = median of {args.rounds})")
    for r in results:
        print(f"\n{r['role']}: first page after server start ({r['landing']}) {r['start_s']:.2f} s")
        print(f"  {'page':<18}{'first (s)':>10}{'warm (s)':>10}  goal")
        for name, t in r["pages"].items():
            ok = t["first_s"] <= GOAL_FIRST_S and t["warm_s"] <= GOAL_WARM_S
            print(f"  {TITLES[name]:<18}{t['first_s']:>10.2f}{t['warm_s']:>10.2f}  {'ok' if ok else 'MISSED'}")


if __name__ == "__main__":
    main()
