"""Plotly figure builders: pure functions from data to ``go.Figure`` (testable without Streamlit)."""

from __future__ import annotations

from html import escape

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

CLASS_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                 "#bcbd22", "#17becf")


def colour(index: int) -> str:
    return CLASS_COLOURS[index % len(CLASS_COLOURS)]


def _image(values, shape):
    return np.asarray(values, dtype=float).reshape(shape)


# RdBu, from blue (negative) through white (zero) to red (positive), as in plotly's "RdBu_r".
_DIVERGING = np.array([[5, 48, 97], [33, 102, 172], [67, 147, 195], [146, 197, 222], [209, 229, 240],
                       [247, 247, 247], [253, 219, 199], [244, 165, 130], [214, 96, 77], [178, 24, 43],
                       [103, 0, 31]], dtype=float)


def _upscale(rgb: np.ndarray, factor: int) -> np.ndarray:
    return np.repeat(np.repeat(rgb, factor, axis=0), factor, axis=1)


def triptych_images(x0, x, shape, pixel: int = 8):
    """Source, counterfactual and difference as RGB arrays (uint8), ``pixel`` screen pixels per image
    pixel. Grey levels: 0 white, 1 black (ink). The difference uses a diverging scale centred at 0 and
    symmetric about it; returns the images and the largest absolute change (the scale's end)."""
    def grey(values):
        level = (255 * (1.0 - np.clip(np.asarray(values, dtype=float), 0.0, 1.0))).astype(np.uint8)
        return np.repeat(level.reshape(shape)[:, :, None], 3, axis=2)

    diff = np.asarray(x - x0, dtype=float).reshape(shape)
    bound = float(np.abs(diff).max()) or 1.0
    position = (diff / bound + 1.0) * 0.5 * (len(_DIVERGING) - 1)
    anchors = np.arange(len(_DIVERGING))
    coloured = np.stack([np.interp(position, anchors, _DIVERGING[:, c]) for c in range(3)], axis=-1).astype(np.uint8)
    return [_upscale(image, pixel) for image in (grey(x0), grey(x), coloured)], bound


def side_by_side(images, gap: int = 12) -> np.ndarray:
    """Images of equal height in one RGB array, white gaps between: one PNG, one request."""
    height = images[0].shape[0]
    spacer = np.full((height, gap, 3), 255, dtype=np.uint8)
    parts = []
    for image in images:
        parts.extend([image, spacer])
    return np.concatenate(parts[:-1], axis=1)


def probability_table_html(before, after, class_names, target: int) -> str:
    """Every class's probability at the source and the counterfactual as plain HTML bars: light enough
    to redraw on every slider move (a chart costs the browser tens of milliseconds per redraw)."""
    rows = []
    for i, name in enumerate(class_names):
        bar_colour = colour(i) if i == target else "#4a5568"
        weight = "bold" if i == target else "normal"
        rows.append(
            f"<tr><td style='padding:1px 8px;font-weight:{weight};white-space:nowrap'>{escape(str(name))}</td>"
            f"<td style='width:45%;padding:1px 4px'><div style='background:#9aa5b1;height:10px;width:{100 * before[i]:.1f}%'></div></td>"
            f"<td style='text-align:right;padding:1px 4px;font-variant-numeric:tabular-nums'>{before[i]:.4f}</td>"
            f"<td style='width:45%;padding:1px 4px'><div style='background:{bar_colour};height:10px;width:{100 * after[i]:.1f}%'></div></td>"
            f"<td style='text-align:right;padding:1px 4px;font-variant-numeric:tabular-nums'>{after[i]:.4f}</td></tr>"
        )
    header = ("<tr><th style='text-align:left;padding:1px 8px'>class</th><th colspan='2' style='text-align:left'>source</th>"
              "<th colspan='2' style='text-align:left'>counterfactual</th></tr>")
    return f"<table style='width:100%;border-collapse:collapse;font-size:0.85rem'>{header}{''.join(rows)}</table>"


def path_figures(lams, proba, distance, class_names, target: int, current_lam: float,
                 distance_label: str = "distance ‖x − x₀‖") -> go.Figure:
    """Probabilities vs log lam, distance vs lam, and the trade-off (distance vs target probability)."""
    fig = make_subplots(rows=1, cols=3, subplot_titles=("class probabilities along the path", distance_label,
                                                        "trade-off"), horizontal_spacing=0.08)
    for i, name in enumerate(class_names):
        width = 4 if i == target else 1.5
        fig.add_trace(go.Scatter(x=lams, y=proba[:, i], name=str(name), line=dict(color=colour(i), width=width),
                                 hovertemplate=f"{name}: " + "%{y:.4f} at λ=%{x:.3g}<extra></extra>"), 1, 1)
    fig.add_trace(go.Scatter(x=lams, y=distance, name="distance", showlegend=False, line=dict(color="#333"),
                             hovertemplate="λ=%{x:.3g}: distance %{y:.4g}<extra></extra>"), 1, 2)
    fig.add_trace(go.Scatter(x=distance, y=proba[:, target], mode="lines", showlegend=False,
                             line=dict(color=colour(target), width=3), customdata=lams,
                             hovertemplate="distance %{x:.4g}, p=%{y:.4f}, λ=%{customdata:.3g}<extra></extra>"), 1, 3)
    index = int(np.argmin(np.abs(np.log(lams) - np.log(current_lam))))
    for col in (1, 2):
        fig.add_vline(x=current_lam, line=dict(color="black", dash="dash"), row=1, col=col)
    fig.add_trace(go.Scatter(x=[distance[index]], y=[proba[index, target]], mode="markers", showlegend=False,
                             marker=dict(size=12, color="black", symbol="x"), hoverinfo="skip"), 1, 3)
    fig.update_xaxes(type="log", title_text="λ", row=1, col=1)
    fig.update_xaxes(type="log", title_text="λ", row=1, col=2)
    fig.update_xaxes(title_text=distance_label, row=1, col=3)
    fig.update_yaxes(title_text="probability", range=[0, 1], row=1, col=1)
    fig.update_yaxes(title_text=f"p({class_names[target]})", range=[0, 1], row=1, col=3)
    fig.update_layout(height=380, margin=dict(l=10, r=10, t=40, b=10))
    return fig


def convergence_figure(histories: dict, best_energy: float) -> go.Figure:
    """``E - E*`` and ``||grad||`` per iteration and per millisecond, log scale (seed paper, Figure 2)."""
    fig = make_subplots(rows=2, cols=2, subplot_titles=("E − E* per iteration", "E − E* over time",
                                                        "‖grad E‖ per iteration", "‖grad E‖ over time"),
                        vertical_spacing=0.14, horizontal_spacing=0.08)
    floor = 1e-17
    for i, (name, history) in enumerate(histories.items()):
        gap = np.maximum(history.energy - best_energy, floor)
        iters = np.arange(len(gap))
        ms = 1e3 * history.time_s
        style = dict(color=colour(i))
        for row, values in ((1, gap), (2, np.maximum(history.grad_norm, floor))):
            fig.add_trace(go.Scatter(x=iters, y=values, name=name, legendgroup=name, showlegend=row == 1,
                                     mode="lines+markers", line=style, marker=dict(size=4)), row, 1)
            fig.add_trace(go.Scatter(x=ms, y=values, name=name, legendgroup=name, showlegend=False,
                                     mode="lines+markers", line=style, marker=dict(size=4)), row, 2)
    fig.update_yaxes(type="log", exponentformat="power")
    fig.update_xaxes(title_text="iteration", col=1, row=2)
    fig.update_xaxes(type="log", col=2)
    fig.update_xaxes(title_text="milliseconds (log scale)", col=2, row=2)
    fig.update_layout(height=560, margin=dict(l=10, r=10, t=40, b=10))
    return fig


def image_strip(X, shape, labels) -> go.Figure:
    """A row of images (e.g. counterfactuals along the lambda path)."""
    n = len(X)
    fig = make_subplots(rows=1, cols=n, subplot_titles=labels, horizontal_spacing=0.01)
    low, high = float(min(np.min(X), 0.0)), float(max(np.max(X), 1.0))
    for j in range(n):
        fig.add_trace(go.Heatmap(z=_image(X[j], shape), colorscale="gray_r", zmin=low, zmax=high, showscale=False,
                                 hoverinfo="skip"), 1, j + 1)
        fig.update_yaxes(autorange="reversed", showticklabels=False, scaleanchor=f"x{'' if j == 0 else j + 1}", row=1, col=j + 1)
        fig.update_xaxes(showticklabels=False, row=1, col=j + 1)
    fig.update_annotations(font_size=11)
    fig.update_layout(height=200, margin=dict(l=5, r=5, t=35, b=5))
    return fig


def image_grid(X, shape, titles, columns: int = 10, colorscale="gray_r", diverging=False, height_per_row=110) -> go.Figure:
    """A grid of images: a data preview, or each class's weight vector (diverging, centred at 0)."""
    n = len(X)
    rows = int(np.ceil(n / columns))
    fig = make_subplots(rows=rows, cols=columns, subplot_titles=titles, horizontal_spacing=0.01, vertical_spacing=0.06)
    for j in range(n):
        z = _image(X[j], shape)
        if diverging:
            bound = float(np.abs(z).max()) or 1.0
            trace = go.Heatmap(z=z, colorscale="RdBu_r", zmid=0.0, zmin=-bound, zmax=bound, showscale=False)
        else:
            trace = go.Heatmap(z=z, colorscale=colorscale, zmin=0, zmax=1, showscale=False)
        r, c = divmod(j, columns)
        fig.add_trace(trace, r + 1, c + 1)
        fig.update_yaxes(scaleanchor=f"x{'' if j == 0 else j + 1}", row=r + 1, col=c + 1)
    fig.update_yaxes(autorange="reversed", showticklabels=False)
    fig.update_xaxes(showticklabels=False)
    fig.update_annotations(font_size=11)
    fig.update_layout(height=rows * height_per_row + 30, margin=dict(l=5, r=5, t=30, b=5))
    return fig


def class_balance(counts, class_names) -> go.Figure:
    fig = go.Figure(go.Bar(x=list(class_names), y=counts, marker_color=[colour(i) for i in range(len(counts))]))
    fig.update_layout(height=260, yaxis_title="rows", xaxis_type="category", margin=dict(l=10, r=10, t=20, b=10))
    return fig


def confusion_figure(matrix, class_names) -> go.Figure:
    names = [str(c) for c in class_names]
    fig = go.Figure(go.Heatmap(z=matrix, x=names, y=names, colorscale="Blues", text=matrix, texttemplate="%{text}",
                               hovertemplate="true %{y}, predicted %{x}: %{z}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", title_text="true class", type="category")
    fig.update_xaxes(title_text="predicted class", type="category")
    fig.update_layout(height=max(300, 40 * len(names) + 100), margin=dict(l=10, r=10, t=20, b=10))
    return fig


def _clip(polygon: np.ndarray, a: np.ndarray, c: float) -> np.ndarray:
    """The part of a convex polygon (vertices in order) where ``a . p + c <= 0`` (Sutherland-Hodgman)."""
    out = []
    for start, end in zip(polygon, np.roll(polygon, -1, axis=0)):
        f_start, f_end = float(a @ start + c), float(a @ end + c)
        if f_start <= 0:
            out.append(start)
        if (f_start <= 0) != (f_end <= 0):
            out.append(start + f_start / (f_start - f_end) * (end - start))
    return np.array(out).reshape(-1, 2)


def class_regions(model, low, high) -> list[np.ndarray]:
    """The exact region of each class inside the box ``[low, high]``: the box cut by the half-planes
    ``(a_i - a_k) . x + (b_i - b_k) <= 0`` for every other class i (a convex polygon, maybe empty)."""
    box = np.array([[low[0], low[1]], [high[0], low[1]], [high[0], high[1]], [low[0], high[1]]], dtype=float)
    A, b = model.coef, model.intercept
    regions = []
    for k in range(model.n_classes):
        polygon = box
        for i in range(model.n_classes):
            if i != k and len(polygon):
                polygon = _clip(polygon, A[i] - A[k], float(b[i] - b[k]))
        regions.append(polygon)
    return regions


def _rgba(hex_colour: str, alpha: float) -> str:
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def decision_regions(model, X, y, class_names, x0, path_X, x_shown, *, target: int, cost=None,
                     shown_label: str = "counterfactual", flip: bool = False, grid_size: int = 120) -> go.Figure:
    """The plane cut into the exact regions of each predicted class, the target's probability
    contours, the data, the source, the path x*(lam) and the answer on screen.

    The axes are scaled so that one unit of the problem's distance (``sqrt(cost_j)`` times a unit of
    feature j) spans the same number of pixels on both: the closest point of a boundary is where a
    perpendicular from x0 meets it. ``flip`` marks the answer as the smallest flip, joined to x0.
    """
    weights = np.ones(2) if cost is None else np.asarray(cost, dtype=float)
    points = np.vstack([X, path_X, x0[None, :], np.asarray(x_shown)[None, :]])
    low, high = points.min(axis=0), points.max(axis=0)
    pad = 0.1 * (high - low) + 1e-9
    low, high = low - pad, high + pad
    fig = go.Figure()
    for k, polygon in enumerate(class_regions(model, low, high)):
        if len(polygon) < 3:
            continue
        closed = np.vstack([polygon, polygon[:1]])
        fig.add_trace(go.Scatter(x=closed[:, 0], y=closed[:, 1], mode="lines", fill="toself",
                                 fillcolor=_rgba(colour(k), 0.22), line=dict(color="rgba(40,40,40,0.8)", width=1),
                                 name=f"predicted {class_names[k]}", hoverinfo="skip", showlegend=False))
    gx, gy = np.linspace(low[0], high[0], grid_size), np.linspace(low[1], high[1], grid_size)
    mesh = np.stack(np.meshgrid(gx, gy), axis=-1).reshape(-1, 2)
    p_target = model.predict_proba(mesh)[:, target].reshape(grid_size, grid_size)
    fig.add_trace(go.Contour(x=gx, y=gy, z=p_target, name=f"p({class_names[target]})", showscale=False,
                             colorscale=[[0, colour(target)], [1, colour(target)]], hoverinfo="skip",
                             line=dict(width=1.2, dash="dot"),
                             contours=dict(start=0.1, end=0.9, size=0.1, coloring="lines", showlabels=True,
                                           labelfont=dict(size=10, color=colour(target)))))
    for i, name in enumerate(class_names):
        mask = y == i
        fig.add_trace(go.Scatter(x=X[mask, 0], y=X[mask, 1], mode="markers", name=str(name),
                                 marker=dict(color=colour(i), size=6, line=dict(width=0.5, color="white"))))
    fig.add_trace(go.Scatter(x=path_X[:, 0], y=path_X[:, 1], mode="lines", name="path x*(λ)",
                             line=dict(color="black", width=3)))
    if flip:
        fig.add_trace(go.Scatter(x=[x0[0], x_shown[0]], y=[x0[1], x_shown[1]], mode="lines", showlegend=False,
                                 line=dict(color="black", width=1.5, dash="dash"), hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=[x0[0]], y=[x0[1]], mode="markers", name="source x0",
                             marker=dict(color="white", size=16, symbol="circle", line=dict(width=3, color="black"))))
    fig.add_trace(go.Scatter(x=[x_shown[0]], y=[x_shown[1]], mode="markers", name=shown_label,
                             marker=dict(color="gold", size=18, symbol="diamond" if flip else "star",
                                         line=dict(width=2, color="black"))))
    fig.update_layout(height=600, margin=dict(l=10, r=10, t=20, b=10), plot_bgcolor="white",
                      xaxis=dict(range=[low[0], high[0]], constrain="domain", showgrid=False, zeroline=False),
                      yaxis=dict(range=[low[1], high[1]], constrain="domain", showgrid=False, zeroline=False,
                                 scaleanchor="x", scaleratio=float(np.sqrt(weights[1] / weights[0]))))
    return fig
