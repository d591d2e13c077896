"""Data: pick a built-in dataset or upload one; preview, class balance, feature ranges."""

import pandas as pd
import streamlit as st

import datasets
from ui import figures, state

state.run_through_app()

st.title("Data")
with st.expander("What am I looking at?"):
    st.markdown(
        "The instances to explain and the data a model is trained on. Built-in datasets ship with the app (no "
        "downloads). Uploads stay in your session only: nobody else can see them, and a failed upload leaves "
        "your current data and model as they were. Images are scaled to [0, 1]; text columns of a table are "
        "one-hot encoded and shown as one feature on the Explore page.\n\n"
        "With your own pipeline loaded on the Model page, a table with its input columns is read by the pipeline "
        "itself, exactly as you trained it: text stays text, and rows with missing values stay where the pipeline "
        "imputes them. Other data gets a default model."
    )

read = state.current_pipeline()
if read is not None:
    columns = read.pipeline.schema.column_names
    st.info(f"Your pipeline ({read.pipeline.filename}) is the model. Tables with its input columns ("
            f"{', '.join(columns[:12])}{' …' if len(columns) > 12 else ''}) are read by it; other data gets a default "
            "model.", icon=":material/account_tree:")

builtin, upload = st.tabs(["Built-in datasets", "Upload"])
with builtin:
    names = datasets.list_builtin()
    current = st.session_state[state.DATASET_NAME]
    choice = st.selectbox("Dataset", names, index=names.index(current) if current in names else 0)
    if st.button("Load this dataset", type="primary", disabled=choice == current):
        with st.spinner("Loading…"):
            message = state.load_builtin(choice)
        if message:
            st.error(message)
        else:
            st.rerun()

with upload:
    st.markdown("A **CSV/TSV** table with a header row (pick the class column), an **.npz** with arrays `X` and "
                "`y` (plus `image_shape` for flat images), or a **.zip** with one folder of PNG/JPEG images per "
                "class. Limits: " + ", ".join(f"{k} {v}" for k, v in datasets.LIMITS.items()) + ".")
    file = st.file_uploader("File", type=["csv", "tsv", "txt", "npz", "zip"])
    if file is not None:
        raw = file.getvalue()
        target = None
        if file.name.lower().endswith((".csv", ".tsv", ".txt")):
            columns = state.upload_columns(raw, file.name)
            if columns:
                target = st.selectbox("Class (target) column", columns,
                                      index=columns.index(datasets.default_target(columns)))
        drop = st.checkbox("Drop rows with missing or non-finite values", value=False)
        if st.button("Use this upload", type="primary"):
            message = state.load_upload(raw, file.name, target, drop)
            if message:
                st.error(message)
            else:
                st.rerun()

dataset = st.session_state[state.DATASET]
st.subheader(f"`{st.session_state[state.DATASET_NAME]}`")
st.caption(dataset.description)
a, b, c, d = st.columns(4)
a.metric("rows", f"{dataset.n_samples:,}")
b.metric("features", f"{dataset.n_features:,}")
c.metric("classes", dataset.n_classes)
d.metric("kind", dataset.kind)

preview, balance, ranges = st.tabs(["Preview", "Class balance", "Feature ranges"])
with preview:
    if dataset.table is not None:
        table = dataset.source_rows(range(min(50, dataset.n_samples))).drop(columns=dataset.table.target)
        table.insert(0, "class", [dataset.class_names[k] for k in dataset.y[:50]])
        st.dataframe(table.set_axis(pd.RangeIndex(len(table), name="#"), axis=0), width="stretch")
        st.caption("The rows as read from the table (text as text, a missing value empty), numbered as on the "
                   "Explore page.")
    elif dataset.kind == "image":
        shown = min(dataset.n_classes, 10)
        rows = [int(i) for rank in (0, 1) for k in range(shown) for i in (dataset.y == k).nonzero()[0][rank:rank + 1]]
        st.plotly_chart(figures.image_grid(dataset.X[rows], dataset.image_shape,
                                           [f"#{i} {dataset.class_names[dataset.y[i]]}" for i in rows]),
                        width="stretch")
    else:
        if dataset.encoding is not None and dataset.encoding.categorical:
            table = pd.DataFrame([dataset.encoding.decode(x) for x in dataset.X[:50]])
        else:
            table = pd.DataFrame(dataset.X[:50, :50], columns=list(dataset.feature_names[:50]))
        table.insert(0, "class", [dataset.class_names[k] for k in dataset.y[:50]])
        st.dataframe(table, width="stretch")
with balance:
    counts = pd.Series(dataset.y).value_counts().reindex(range(dataset.n_classes), fill_value=0).to_numpy()
    st.plotly_chart(figures.class_balance(counts, dataset.class_names), width="stretch")
with ranges:
    summary = pd.DataFrame({"feature": dataset.feature_names, "min": dataset.X.min(axis=0), "max": dataset.X.max(axis=0),
                            "mean": dataset.X.mean(axis=0), "std": dataset.X.std(axis=0)})
    st.dataframe(summary.head(2000), width="stretch", hide_index=True)
