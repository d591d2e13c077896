"""Model: train a softmax model or load one (a scikit-learn pipeline included); what it is, download."""

from dataclasses import replace

import numpy as np
import streamlit as st

import solver
from ui import figures, pipeline, state

state.run_through_app()

dataset = st.session_state[state.DATASET]
st.title("Model")
with st.expander("What am I looking at?"):
    st.markdown(
        "The classifier being explained: p(x) = softmax(A x + b), one weight vector per class. Training fits "
        "scikit-learn's multinomial logistic regression (L2 penalty, strength 1/C) on a seeded train/test split. "
        "Standardisation is folded into A and b, so counterfactuals are always posed in the features you see.\n\n"
        "Your own scikit-learn pipeline, saved with `skops.io.dump`, can be loaded too: a `Pipeline` or "
        "`ColumnTransformer` of StandardScaler, MinMaxScaler, MaxAbsScaler, RobustScaler, OneHotEncoder, "
        "OrdinalEncoder and SimpleImputer, ending in LogisticRegression, LogisticRegressionCV, "
        "SGDClassifier(loss='log_loss') or LinearDiscriminantAnalysis. It is folded exactly into A and b over its "
        "encoded columns and reads the current table in its own columns: load the table it was trained on on "
        "the Data page first. Model files are never unpickled: every type in a .skops file is checked against "
        "that list before anything is loaded, and .npz/.json files hold plain numbers."
    )

train_tab, load_tab = st.tabs(["Train", "Load a model file"])
with train_tab:
    params = st.session_state[state.TRAIN_PARAMS]
    C_OPTIONS = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0)
    with st.form("train"):
        a, b, c, d = st.columns(4)
        C = a.select_slider("C (inverse regularisation)", options=C_OPTIONS, value=params.C if params.C in C_OPTIONS else 1.0)
        standardize = b.checkbox("Standardise features", value=params.standardize)
        test_fraction = c.slider("Test fraction", 0.1, 0.5, float(params.test_fraction), 0.05)
        seed = int(d.number_input("Split seed", 0, 10_000, int(params.seed)))
        if st.form_submit_button("Train", type="primary"):
            requested = replace(params, C=C, standardize=standardize, test_fraction=test_fraction, seed=seed)
            try:
                trained = state.train(dataset, requested)
            except ValueError as exc:
                st.error(str(exc))
            else:
                st.session_state[state.TRAIN_PARAMS] = requested
                state.set_model(trained.model, state.training_label(requested), trained)
                st.rerun()
with load_tab:
    # Pickles are accepted by the file picker only to be refused in words: they are never opened.
    file = st.file_uploader("Model file (.npz, .json or .skops)", type=["npz", "json", "skops", "pkl", "pickle", "joblib"])
    if file is not None and st.button("Use this model", type="primary"):
        message = state.load_model_file(file.getvalue(), file.name)
        if message:
            st.error(message)
        else:
            st.rerun()

model = st.session_state[state.MODEL]
trained = st.session_state[state.TRAINED]
read = state.current_pipeline()
st.subheader(f"Current model: {st.session_state[state.MODEL_LABEL]}")
a, b, c = st.columns(3)
if read is not None:
    schema = read.pipeline.schema
    a.metric("pipeline accuracy on these rows", f"{read.accuracy:.1%}",
             help=f"{dataset.n_samples:,} of the table's {len(dataset.table.frame):,} rows")
    b.metric("encoded features", schema.n_features,
             help=f"Shown here as {dataset.n_features} features: one per level of every categorical column.")
    c.metric("fold check: max |Δp|", f"{read.fold_error:.1e}",
             help="The largest difference between the probabilities the dashboard computes and your pipeline's own "
                  f"predict_proba, over all {dataset.n_samples:,} rows (folded model over the pipeline's encoded "
                  f"features: {read.encoded_fold_error:.1e}).")
    st.markdown("**Steps**\n\n" + "\n".join(f"- `{step}`" for step in schema.steps))
    st.markdown("**Columns by kind**\n\n" + "\n".join(
        f"- {kind} ({len(names)}): {', '.join(names)}" for kind, names in pipeline.columns_by_kind(read).items()))
    st.dataframe(pipeline.columns_table(read), width="stretch", hide_index=True)
    for note in read.notes:
        st.caption(note + ".")
elif trained is not None:
    a.metric("train accuracy", f"{trained.train_accuracy:.1%}")
    b.metric("test accuracy", f"{trained.test_accuracy:.1%}")
    c.metric("fit time", f"{trained.fit_seconds:.2f} s",
             help=None if trained.origin == "trained here" else "measured when the shipped file was made")
    if trained.origin != "trained here":
        st.caption(f"Parameters read from the {trained.origin} (made by `python -m training.make_default_models` "
                   "for this very data and these settings), so the server does not retrain it on start.")
    st.markdown("**Confusion matrix** (test set)")
    st.plotly_chart(figures.confusion_figure(trained.confusion, model.classes), width="stretch")
else:
    accuracy = float(np.mean(model.predict(dataset.X) == dataset.y))
    a.metric("accuracy on the whole dataset", f"{accuracy:.1%}")

if dataset.kind == "image":
    st.markdown("**Each class's weight vector** (red pushes towards the class, blue away)")
    centred = model.coef - model.coef.mean(axis=0)
    st.plotly_chart(figures.image_grid(centred, dataset.image_shape, [str(c) for c in model.classes], diverging=True,
                                       height_per_row=140), width="stretch")

st.markdown("**Download**")
if read is not None:
    st.caption("The folded model over the features shown here (not your pipeline itself, which you already have).")
cols = st.columns(len(solver.FORMATS))
for col, fmt in zip(cols, solver.FORMATS):
    col.download_button(f".{fmt}", model.to_bytes(fmt), file_name=f"softmax_model.{fmt}",
                        mime="application/octet-stream", key=f"download_{fmt}")
