"""Start the dashboard (``make run``): ``python -m ui.serve [streamlit options]`` is ``streamlit run app.py
[streamlit options]`` with the app's modules imported first.

Streamlit runs no app code until the first request, so that request would pay for importing the solver,
the glue and their libraries (about a second here, a third of the first screen). Imported here, in the
process's main thread before the server starts, they are ready when the first visitor arrives.
"""

from __future__ import annotations

import sys
from pathlib import Path

APP = Path(__file__).resolve().parents[1] / "app.py"


def preload() -> None:
    """Import what the first screen (Explore on the default dataset) runs."""
    import plotly.graph_objects  # noqa: F401

    import ui.figures
    import ui.live_slider
    import ui.panels
    import ui.recourse
    import ui.sidebar
    import ui.solve
    import ui.state
    import ui.view  # noqa: F401


def main(argv: list[str] | None = None) -> int:
    from streamlit.web import cli

    preload()
    return cli.main(args=["run", str(APP), *(sys.argv[1:] if argv is None else argv)], prog_name="streamlit")


if __name__ == "__main__":
    sys.exit(main())
