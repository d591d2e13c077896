"""Streamlit building blocks of the Audit page: the question, running it over every row with a progress bar,
and the results (metrics by group, the cost's ECDF, rows without recourse, the features changed, the row
table with its links to Explore, downloads). The computations are in ``ui.audit``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, urlencode

import numpy as np
import pandas as pd
import streamlit as st

import datasets
from ui import audit, constraints, links, panels, solve, state, view
from ui.audit import Audit

EXPLORE = "pages/explore.py"
LABELS = {"flip": "Smallest change that flips the decision", "probability": "Smallest change to p(target) ≥ α",
          "lam": "Penalised answer at a fixed λ"}
ROWS_LABELS = {audit.NEED_ROWS: "not already predicted as the target", audit.ALL_ROWS: "every row"}
STATUS_HELP = ("recourse: a valid answer; no answer: none exists under these settings (or the solver failed, in "
               "its message); not reached (fixed λ): the answer at this λ is not predicted as the target; rejected: "
               "the solver reported an answer that failed the page's own check (please report it).")
EXPLAINER = (
    "The population question: *who can flip the decision, at what cost, and is that cost fair across groups?* "
    "The audit asks every row of the dataset the same question, with the same *what may change* as Explore, "
    "and answers it exactly (the batched solver gives each row the single-row answer):\n\n"
    "- **Smallest change that flips the decision**: the closest x the model assigns to the target class.\n"
    "- **Smallest change to p(target) ≥ α**: the closest x with at least that probability.\n"
    "- **Penalised answer at a fixed λ**: the minimiser of λ/2 ‖x − x₀‖² − log p_k(x) (the slider's answer); it "
    "is recourse when the model predicts the target there.\n\n"
    "The cost is the problem's own distance √(Σⱼ costⱼ (xⱼ − x₀ⱼ)²) (in standard deviations when change is measured "
    "in them). Locks, costs and ranges apply to every row alike; *may only rise / fall* is a bound at each row's "
    "own value. The audit keeps every categorical level as it is. Every answer is checked here against the "
    "model's logits (predicted as the target, p ≥ α, locks bit for bit, ranges) before it counts; rows without "
    "an answer say why. By group: each group's median cost and its ratio to the lowest group median (the "
    "recourse-cost disparity), and the share of rows with no recourse at all. Each row of the table opens that "
    "applicant on Explore with the same question.")


@dataclass(frozen=True)
class Request:
    """The audit the controls ask for."""

    question: str
    target: int  # a class index, or audit.RUNNER_UP
    alpha: float | None
    lam: float | None


# -- the question ------------------------------------------------------------------------------------
def default_target(model, dataset) -> int:
    """Two classes: the class the model predicts most often (the favourable decision, for credit data);
    more: each row's runner-up class."""
    if model.n_classes == 2:
        return int(np.argmax(np.bincount(model.predict(dataset.X), minlength=2)))
    return audit.RUNNER_UP


def init(dataset, model) -> None:
    """The audit's settings in this session; target and group start afresh for new data."""
    ss = st.session_state
    ss.setdefault(state.AUDIT_QUESTION, "flip")
    ss.setdefault(state.AUDIT_LOG_LAM, state.DEFAULT_LOG_LAM)
    ss.setdefault(state.AUDIT_ROWS, audit.NEED_ROWS)
    ss.setdefault(state.AUDIT_OPEN, None)
    target = ss.get(state.AUDIT_TARGET)
    fresh = ss.get(state.AUDIT_DEFAULTS_FOR) != dataset.content_hash
    if fresh or target is None or not (target == audit.RUNNER_UP or 0 <= target < model.n_classes):
        ss[state.AUDIT_TARGET] = default_target(model, dataset)
    options = audit.group_options(dataset)
    if fresh or ss.get(state.AUDIT_GROUP) not in options:
        ss[state.AUDIT_GROUP] = options[0]
    ss[state.AUDIT_DEFAULTS_FOR] = dataset.content_hash


def _use_flip() -> None:
    st.session_state[state.AUDIT_QUESTION] = "flip"


def question_controls(dataset, model) -> Request:
    """The question, its α or λ, and the target."""
    names = [str(c) for c in model.classes]
    counts = np.bincount(model.predict(dataset.X), minlength=model.n_classes)
    left, middle, right = st.columns([3, 2, 2])
    question = state.bind(left.radio, "Question", state.AUDIT_QUESTION, options=list(audit.QUESTIONS),
                          format_func=LABELS.get)
    alpha = lam = None
    if question == "probability":
        alpha = float(state.bind(middle.number_input, "α (p of the target at least)", state.ALPHA, min_value=0.01,
                                 max_value=0.9999, step=0.05, format="%.4f", help="The same α as on Explore."))
    elif question == "lam":
        low, high = state.LOG_LAM_RANGE
        log_lam = float(state.bind(middle.slider, "log₁₀ λ", state.AUDIT_LOG_LAM, min_value=low, max_value=high,
                                   step=state.LOG_LAM_STEP, format="%.2f"))
        lam = 10.0 ** log_lam
        middle.caption(f"λ = {lam:.4g}")
    else:
        middle.caption("The answer is predicted as the target by a margin of 1e-6 in the logits (no ties).")
    options = list(range(model.n_classes)) + [audit.RUNNER_UP]
    target = state.bind(right.selectbox, "Target class", state.AUDIT_TARGET, options=options,
                        format_func=lambda k: ("each row's runner-up class" if k == audit.RUNNER_UP else
                                               f"{names[k]}  (predicted now for {counts[k]:,} rows)"))
    return Request(question=question, target=int(target), alpha=alpha, lam=lam)


def settings_summary(dataset, what) -> str:
    """What may change, in one line."""
    if dataset.kind == "image":
        return ("Pixels stay in [0, 1] (projected Newton)." if what.arguments.get("bounds") is not None else
                "Pixels are free: no range.") + " Distances are Euclidean in pixel values."
    table = what.table
    choice = dict(zip(table.feature, table["may change"]))
    groups = {g.name for g in dataset.encoding.categorical}
    numeric = [name for name, _ in dataset.encoding.numeric]
    parts = []
    for label, wanted in (("locked", constraints.LOCKED), ("may only rise", constraints.RISE),
                          ("may only fall", constraints.FALL)):
        names = [n for n in numeric if choice.get(n) == wanted]
        if names:
            parts.append(f"{label}: {', '.join(names)}")
    free = [n for n in numeric if choice.get(n) == constraints.MAY_CHANGE]
    parts.insert(0, f"{len(free)} of {len(numeric)} numeric features may change")
    if groups:
        allowed = [g for g in groups if choice.get(g) != constraints.LOCKED]
        parts.append(f"categorical levels kept as they are ({len(groups)} features"
                     + (f"; {len(allowed)} allowed to change on Explore" if allowed else "") + ")")
    edits = len(what.edits)
    cells = f" ({edits} cell{'' if edits == 1 else 's'} edited)" if edits else ""
    parts.append(f"ranges: the observed min and max{cells}")
    return panels.markdown_safe("; ".join(parts) + f". Distances in {what.unit}.")


SLOW_CELLS = 1_000_000  # rows x features from which the probability question with ranges takes seconds


def slow_note(dataset, what, request: Request) -> str | None:
    """A warning before a run that takes many seconds: the probability question with ranges on a large
    dataset (measured 9-24 s for MNIST-5k with the pixel range, 23 s for text-sparse with the observed
    ranges, on a loaded 2-core machine; under 1 s for German credit)."""
    if (request.question != "probability" or what.arguments.get("bounds") is None
            or dataset.n_samples * dataset.n_features < SLOW_CELLS):
        return None
    ranges = "the [0, 1] pixel range" if dataset.kind == "image" else "ranges"
    off = ("without the pixel range (What may change) all three take under a second" if dataset.kind == "image" else
           "fewer ranges (What may change) make it faster")
    return (f"With {ranges} the probability question is the slow one: each of the {dataset.n_samples:,} rows is a "
            f"search over λ with projected Newton solves in {dataset.n_features:,} dimensions (9–24 s for MNIST-5k "
            f"on this shared 2-core machine, measured). The smallest flip and a fixed λ take a second or two; {off}.")


# -- running and keeping ---------------------------------------------------------------------------------
def current_key(dataset, model, what, request: Request) -> audit.AuditKey:
    return audit.audit_key(dataset, model, what, request.question, request.target, alpha=request.alpha,
                           lam=request.lam)


def run_section(dataset, model, what, request: Request) -> Audit | None:
    """The run button (with a progress bar while it runs) and the audit to show: the kept one if it was run
    for exactly these settings, else None (with a line on what changed)."""
    n = dataset.n_samples
    slow = slow_note(dataset, what, request)
    if slow:
        note, faster = st.columns([4, 1], vertical_alignment="center")
        note.warning(slow, icon=":material/timer:")
        faster.button("Ask the smallest flip", on_click=_use_flip, key="audit_use_flip", width="stretch")
    if st.button(f"Run the audit over all {n:,} rows", type="primary", icon=":material/play_arrow:", key="audit_run"):
        bar = st.progress(0.0, text=f"0 of {n:,} rows")
        try:
            result = audit.run(dataset, model, what, request.question, request.target, alpha=request.alpha,
                               lam=request.lam, progress=lambda done, total: bar.progress(
                                   done / total, text=f"{done:,} of {total:,} rows"))
        except ValueError as exc:  # what may change leaves nothing to change
            bar.empty()
            st.warning(f"The audit was not run: {exc}.")
            return None
        bar.empty()
        st.session_state[state.AUDIT] = result
    kept = st.session_state.get(state.AUDIT)
    if kept is None:
        st.info("Choose the question, the target and what may change, then run the audit.",
                icon=":material/fact_check:")
        return None
    key = current_key(dataset, model, what, request)
    if kept.key != key:
        changed = audit.changed_key_parts(kept.key, key)
        st.info(f"The last audit was run before {', '.join(changed)} changed; run it again for these settings.",
                icon=":material/update:")
        return None
    return kept


# -- the results ---------------------------------------------------------------------------------------
def _share(x: float) -> str:
    return f"{x:.1%}"


def results(dataset, model, kept: Audit) -> None:
    """Everything one audit shows, for the chosen split and rows."""
    column_col, rows_col = st.columns([2, 3])
    column = state.bind(column_col.selectbox, "Split by", state.AUDIT_GROUP, options=audit.group_options(dataset),
                        help="A categorical column by level; age in bands 0–25–35–50–65+; other numbers by quartile.")
    which = state.bind(rows_col.radio, "Rows summarised", state.AUDIT_ROWS, options=list(ROWS_LABELS),
                       format_func=ROWS_LABELS.get, horizontal=True,
                       help="Not already predicted as the target: the applicants the decision went against. Every "
                            "row: rows that already answer the question count with cost 0.")
    groups = audit.group_labels(dataset, column, model=model)
    mask = audit.summarised(kept, which)
    rows = kept.rows[mask]
    recourse = (rows["status"] == audit.RECOURSE).to_numpy()
    table = audit.group_costs(recourse, rows["distance"], groups[mask])
    unit = view.distance_label(kept.unit)
    cost = rows["distance"][recourse]
    cols = st.columns(6)
    cols[0].metric("rows summarised", f"{len(rows):,}", help=f"of {len(kept.rows):,}; {ROWS_LABELS[which]}")
    cols[1].metric("with recourse", _share(recourse.mean()) if len(rows) else "—")
    cols[2].metric("without recourse", f"{int((~recourse).sum()):,}", help=STATUS_HELP)
    cols[3].metric("median cost", view.format_distance(float(cost.median())) if len(cost) else "—",
                   help=f"Among the rows with recourse; {unit}.")
    medians = table["median"].dropna()
    ratio = (f"{medians.max() / medians.min():.3g}" if len(medians) > 1 and medians.min() > 0 else "—")
    cols[4].metric("cost disparity", ratio, help=f"The highest group median cost over the lowest, across {column} "
                                                 "(see the group sizes below: small groups vary most).")
    cols[5].metric("time", f"{kept.time_s:.2f} s", help=f"Solves {kept.solve_s:.2f} s; checks and tables the rest.")
    asked = LABELS[kept.key.question]
    if kept.key.question == "probability":
        asked += f", α = {kept.key.parameter:g}"
    elif kept.key.question == "lam":
        asked += f", λ = {kept.key.parameter:.4g}"
    notes = [f"{asked}."]
    notes += list(kept.notes)
    read = state.current_pipeline()
    if read is not None:
        notes.append(f"The model is your pipeline ({read.pipeline.filename}) folded into a softmax (largest difference "
                     f"in p over these rows {read.fold_error:.1e}); the answers are checked with it here, and Explore "
                     "checks one answer with the pipeline itself.")
    st.caption(panels.markdown_safe(" ".join(notes)))
    rejected = int((kept.rows["status"] == audit.REJECTED).sum())
    if rejected:
        st.warning(f"{rejected:,} answers the solver reported failed the page's own check and are counted as without "
                   "recourse (their messages say why); please report this.")
    chart, lost = st.columns([3, 2])
    chart.markdown(f"**Cost of recourse by {panels.markdown_safe(column)}** (ECDF of the rows with recourse)")
    chart.plotly_chart(audit.ecdf_figure(rows["distance"], recourse, groups[mask], unit), width="stretch",
                       key="audit_ecdf", config={"displayModeBar": False})
    lost.markdown("**Rows without recourse**, by group")
    if recourse.all():
        lost.caption("Every row summarised has recourse under these settings.")
    else:
        lost.plotly_chart(audit.no_recourse_figure(table, column), width="stretch", key="audit_no_recourse",
                          config={"displayModeBar": False})
    st.dataframe(_group_table(table, column), hide_index=True, width="stretch", key="audit_groups",
                 column_config={"with recourse %": st.column_config.NumberColumn(format="%.1f"),
                                **{c: st.column_config.NumberColumn(format="%.4g", help=f"Cost, {unit}")
                                   for c in ("q25", "median", "q75")},
                                "median / lowest median": st.column_config.NumberColumn(format="%.3g")})
    why = _why_no_recourse(rows)
    if len(why):
        st.markdown("**Why rows have no recourse**")
        st.dataframe(why, hide_index=True, width="stretch", key="audit_why")
    _changes(dataset, kept, mask)
    _row_table(dataset, kept, rows, groups, mask)


def _group_table(table: pd.DataFrame, column: str) -> pd.DataFrame:
    shown = table.rename(columns={"group": column, "no_recourse": "without recourse"})
    shown.insert(2, "with recourse %", 100.0 * shown.pop("feasible"))
    shown[column] = shown[column].astype(str)
    return shown


def _why_no_recourse(rows: pd.DataFrame) -> pd.DataFrame:
    """The messages of the rows without recourse, numbers blanked, with how many rows each."""
    lost = rows[rows["status"] != audit.RECOURSE]
    if lost.empty:
        return lost
    reasons = lost["status"] + ": " + lost["message"].astype(str).map(
        lambda m: re.sub(r"-?\d[\d.]*(e[-+]?\d+)?", "…", m))
    counts = reasons.value_counts()
    return pd.DataFrame({"reason (numbers vary by row)": counts.index, "rows": counts.to_numpy()})


def _changes(dataset, kept: Audit, mask: np.ndarray) -> None:
    """Which features the answers change most often (tables), or the mean change per pixel (images)."""
    if dataset.kind == "image":
        which = st.session_state[state.AUDIT_ROWS]
        st.markdown("**Mean change per pixel** over the answers with recourse (red: ink added, blue: removed)")
        st.plotly_chart(audit.change_heatmap(kept.mean_change[which], dataset.image_shape), key="audit_heatmap",
                        config={"displayModeBar": False})
        return
    changed = audit.changed_columns(kept, mask)
    chart, numbers = st.columns([3, 2])
    chart.markdown("**Features the answers change most often**")
    chart.plotly_chart(audit.changed_figure(changed), width="stretch", key="audit_changed",
                       config={"displayModeBar": False})
    numbers.dataframe(changed.rename(columns={"median change": f"median change, {view.distance_label(kept.unit)}"}),
                      hide_index=True, width="stretch", key="audit_changed_table",
                      column_config={"share of answers": st.column_config.NumberColumn(format="%.3f")})
    numbers.caption("A feature counts as changed when it moves by more than 1e-9 (1 + |x₀|). Smallest changes move "
                    "every free feature a little (the distance is squared); locks and ranges keep features still.")


def row_links(dataset, kept: Audit, rows: pd.DataFrame) -> list[str] | None:
    """Each row's link to Explore with the same question, relative to the app ("./?dataset=…"); None when
    the question cannot travel in a link (uploaded data, a model loaded from a file or a pipeline)."""
    name = st.session_state[state.DATASET_NAME]
    if name not in datasets.list_builtin() or st.session_state[state.TRAINED] is None:
        return None
    image = dataset.kind == "image"
    question = {"flip": "flip", "probability": "alpha", "lam": None}[kept.key.question]
    log_lam = _slider_log_lam(kept.key.parameter) if kept.key.question == "lam" else st.session_state[state.LOG_LAM]
    params = links.encode(dataset=name, instance=0, target=0, log_lam=log_lam, kind=dataset.kind,
                          flag=st.session_state[state.PIXEL_RANGE] if image else st.session_state[state.STANDARDISED],
                          question=question, alpha=kept.key.parameter if question == "alpha" else None,
                          edits=solve.settings().edits, training=st.session_state[state.TRAIN_PARAMS])
    return ["./?" + urlencode({**params, "i": str(int(i)), "target": str(int(t))}, quote_via=quote)
            for i, t in zip(rows["row"], rows["target index"])]


def _row_table(dataset, kept: Audit, rows: pd.DataFrame, groups: pd.Series, mask: np.ndarray) -> None:
    """The rows summarised (sortable by any column), each with its link to Explore; opening one in this
    session; the downloads (every row)."""
    st.markdown("**The rows** (click a column's header to sort)")
    shown = rows.drop(columns=[c for c in rows.columns if c.startswith("answer: ")] + ["target index"])
    if shown["λ"].isna().all():  # flips have no λ
        shown = shown.drop(columns="λ")
    if groups.name not in shown.columns:  # the true class is a column already
        shown.insert(1, groups.name, groups[mask].astype(str).to_numpy())
    hrefs = row_links(dataset, kept, rows)
    config = {"distance": st.column_config.NumberColumn(format="%.4g"),
              "p(target) before": st.column_config.NumberColumn(format="%.4f"),
              "p(target) after": st.column_config.NumberColumn(format="%.4f"),
              "λ": st.column_config.NumberColumn(format="%.4g"),
              "status": st.column_config.TextColumn(help=STATUS_HELP)}
    if hrefs is not None:
        shown.insert(1, "Explore", hrefs)
        config["Explore"] = st.column_config.LinkColumn(display_text="open ↗", help="This row on Explore, same "
                                                        "question and what may change (a new tab: a new session).")
    st.dataframe(shown, hide_index=True, width="stretch", height=380, column_config=config, key="audit_table")
    if hrefs is None:
        st.caption("No links: uploaded data, model files and pipelines stay in your session and cannot travel in a "
                   "link. Open a row on Explore with the button below instead.")
    pick, go_col, csv_col, parquet_col = st.columns([3, 1.2, 1.2, 1.2], vertical_alignment="bottom")
    labels = dict(zip(rows["row"], rows["status"]))
    picked = pick.selectbox("Open a row on Explore (this session)", list(rows["row"]), index=None,
                            key=state.widget_key(state.AUDIT_OPEN), placeholder="row …",
                            format_func=lambda i: f"#{i} · {labels[i]}")
    if go_col.button("Open on Explore", disabled=picked is None, width="stretch", key="audit_open_button"):
        open_on_explore(kept, int(picked))
    frame = audit.download_frame(kept, groups)
    stem = f"audit_{re.sub(r'[^A-Za-z0-9_-]+', '_', st.session_state[state.DATASET_NAME])}_{kept.key.question}"
    csv_col.download_button("Rows (CSV)", lambda: audit.to_csv(frame), file_name=f"{stem}.csv", mime="text/csv",
                            on_click="ignore", width="stretch", help="Every row of the dataset, with the answer's values.")
    parquet_col.download_button("Rows (Parquet)", lambda: audit.to_parquet(frame), file_name=f"{stem}.parquet",
                                mime="application/vnd.apache.parquet", on_click="ignore", width="stretch")


def _slider_log_lam(lam: float) -> float:
    """The Explore slider's step nearest to ``lam`` (the audit's λ is one of its steps)."""
    low, high = state.LOG_LAM_RANGE
    return float(np.clip(round(np.log10(lam) / state.LOG_LAM_STEP) * state.LOG_LAM_STEP, low, high))


def open_on_explore(kept: Audit, index: int) -> None:
    """Row ``index`` on Explore, asked the audit's question (a fixed λ: the slider at that λ)."""
    target = int(kept.rows["target index"].iloc[index])
    state.choose_instance(index)
    state.choose_target(target)
    st.session_state[state.ANSWER] = None
    if kept.key.question == "lam":
        st.session_state[state.LOG_LAM] = _slider_log_lam(kept.key.parameter)
    else:
        alpha = kept.key.parameter if kept.key.question == "probability" else None
        if alpha is not None:
            st.session_state[state.ALPHA] = alpha
        try:
            solve.answer_question("flip" if alpha is None else "alpha", alpha)
        except ValueError as exc:  # as Explore's own buttons: the reason in words
            st.session_state[state.QUESTION_ERROR] = f"The question was not asked: {exc}."
    st.switch_page(EXPLORE)
