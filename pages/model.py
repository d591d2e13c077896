"""Model: train a softmax model or load one; accuracy, confusion matrix, class weights, download."""

import numpy as np
import streamlit as st

import solver
from ui import figures, state

dataset = st.session_state[state.DATASET]
st.title("Model")
with st.expander("What am I looking at?"):
    st.markdown(
        "The classifier being explained: p(x) = softmax(A x + b), one weight vector per class. Training fits "
        "scikit-learn's multinomial logistic regression (L2 penalty, strength 1/C) on a seeded train/test split. "
        "Standardisation is folded into A and b, so counterfactuals are always posed in the features you see. "
        "Model files are never unpickled: .npz/.json hold plain numbers, .skops files may contain only "
        "LogisticRegression, StandardScaler and Pipeline."
    )

train_tab, load_tab = st.tabs(["Train", "Load a model file"])
with train_tab:
    params = dict(st.session_state[state.TRAIN_PARAMS])
    with st.form("train"):
        a, b, c, d = st.columns(4)
        params["C"] = a.select_slider("C (inverse regularisation)", options=[0.001, 0.01, 0.1, 1.0, 10.0, 100.0],
                                      value=params["C"] if params["C"] in (0.001, 0.01, 0.1, 1.0, 10.0, 100.0) else 1.0)
        params["standardize"] = b.checkbox("Standardise features", value=params["standardize"])
        params["test_fraction"] = c.slider("Test fraction", 0.1, 0.5, float(params["test_fraction"]), 0.05)
        params["seed"] = int(d.number_input("Split seed", 0, 10_000, int(params["seed"])))
        if st.form_submit_button("Train", type="primary"):
            try:
                trained = state.train(dataset, params)
            except ValueError as exc:
                st.error(str(exc))
            else:
                st.session_state[state.TRAIN_PARAMS] = params
                state.set_model(trained.model, state.training_label(params), trained)
                st.rerun()
with load_tab:
    file = st.file_uploader("Model file (.npz, .json or .skops)", type=["npz", "json", "skops"])
    if file is not None and st.button("Use this model", type="primary"):
        message = state.load_model_file(file.getvalue(), file.name)
        if message:
            st.error(message)
        else:
            st.rerun()

model = st.session_state[state.MODEL]
trained = st.session_state[state.TRAINED]
st.subheader(f"Current model: {st.session_state[state.MODEL_LABEL]}")
a, b, c = st.columns(3)
if trained is not None:
    a.metric("train accuracy", f"{trained.train_accuracy:.1%}")
    b.metric("test accuracy", f"{trained.test_accuracy:.1%}")
    c.metric("fit time", f"{trained.fit_seconds:.2f} s")
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
cols = st.columns(len(solver.FORMATS))
for col, fmt in zip(cols, solver.FORMATS):
    col.download_button(f".{fmt}", model.to_bytes(fmt), file_name=f"softmax_model.{fmt}",
                        mime="application/octet-stream", key=f"download_{fmt}")
