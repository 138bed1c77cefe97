"""What every figure of the package shares: the single-column width, the fonts, and figures without global state.

A figure is a :class:`matplotlib.figure.Figure` on its own Agg canvas: pyplot is never imported, no backend is
selected and no figure is registered with pyplot, so drawing works headless, leaves nothing open and does not
change the backend of the program that calls it. Fonts and resolution hold only inside :func:`styled`
(``matplotlib.rc_context``), so the caller's rcParams are the same afterwards.
"""

from __future__ import annotations

import functools

#: inches, a single-column figure
WIDTH = 3.4
#: rcParams of every figure (8-9 pt fonts), applied only while one is drawn and saved
STYLE = {"font.size": 8, "axes.labelsize": 9, "legend.fontsize": 7, "savefig.dpi": 200}


def new_figure(figsize: tuple[float, float], **subplots):
    """(figure, axes): a figure of ``figsize`` inches on its own Agg canvas; ``subplots`` as for ``Figure.subplots``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=figsize)
    FigureCanvasAgg(figure)
    return figure, figure.subplots(**subplots)


def styled(draw):
    """``draw`` (a function that draws and saves one figure) run inside ``matplotlib.rc_context(STYLE)``."""

    @functools.wraps(draw)
    def in_style(*args, **kwargs):
        import matplotlib

        with matplotlib.rc_context(STYLE):
            return draw(*args, **kwargs)

    return in_style
