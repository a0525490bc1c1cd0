"""`streamlit run app.py`, started warm: the heavy imports, the engine's services (migrations checked, catalog loaded)
and the analytics store are ready before the server accepts its first visitor, so the first page after a start
draws as fast as any other (`make run` starts the app through this; arguments are streamlit's own)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from streamlit.web import cli

ROOT = Path(__file__).resolve().parent


def warm() -> None:
    """Build what every first visit would otherwise wait for; a failure here only means a slower first page."""
    quieted: dict[logging.Logger, int] = {}
    try:
        import pandas as pd
        import plotly.express as px
        import streamlit  # noqa: F401  (creates its loggers, quieted below before the pages' caches are declared)

        # "No runtime found" / "no ScriptRunContext" warnings are expected before the server runs; streamlit gives
        # each module's logger its own level, so quieting the "streamlit" parent alone does not silence them
        for name in list(logging.root.manager.loggerDict):
            if name.split(".")[0] == "streamlit":
                log = logging.getLogger(name)
                quieted[log] = log.level
                log.setLevel(logging.ERROR)
        from core.services import SYSTEM
        from pages.ui import services

        svc = services()  # the same st.cache_resource entry the pages use: built once per process
        svc.users.list(SYSTEM)
        svc.models.list(SYSTEM)
        svc.spend.store_version(SYSTEM)
        # plotly builds its validators and templates on the first figure of each kind (about 0.7 s)
        frame = pd.DataFrame({"x": ["a", "b"], "y": [1.0, 2.0], "c": ["p", "q"]})
        for fig in (
            px.line(frame, x="x", y="y", color="c"),
            px.bar(frame, x="x", y="y", color="c"),
            px.area(frame, x="x", y="y", color="c"),
            px.scatter(frame, x="x", y="y", color="c"),
            px.treemap(frame, path=["c", "x"], values="y"),
        ):
            fig.update_layout(title="warm").to_json()
    except Exception:
        logging.getLogger(__name__).warning("warming the app failed; the first page will build it", exc_info=True)
    finally:
        for log, level in quieted.items():
            log.setLevel(level)


def route_with_navigation_only() -> None:
    """Tell Streamlit that app.py routes with `st.navigation` from its first run. Streamlit decides that from whether
    a `pages/` folder stands beside the main script (a class attribute, set when the first session starts), and then
    runs that first session's first script in its old multipage mode, which lists every module of `pages/` (ui, fmt,
    tables...) in the sidebar until app.py's `st.navigation` replaces the list: a flash of raw module names on the
    first visit after every start. The folder holds the pages st.navigation serves, under the design card's name."""
    from streamlit.runtime.pages_manager import PagesManager

    PagesManager.uses_pages_directory = False  # what st.navigation itself sets, once it has run


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    route_with_navigation_only()
    warm()
    sys.argv = ["streamlit", "run", str(ROOT / "app.py"), *sys.argv[1:]]
    sys.exit(cli.main())
