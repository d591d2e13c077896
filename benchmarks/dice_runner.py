"""DiCE (dice-ml) as a peer, run in its own virtualenv: `python dice_runner.py job.json out.json`.

Called by recourse_benchmark.py in a subprocess (dice-ml pulls in xgboost/lightgbm and is not a project
dependency). The job gives the training table in the user's columns, the softmax model (weights and the one-hot
encoding), the queries, the targets and the constraints; the model is evaluated here exactly as ours is.
"""

import json
import sys
import time
import warnings

import numpy as np
import pandas as pd


class EncodedSoftmax:
    """predict_proba on a table in the user's columns: one-hot as the project encodes, then softmax(A x + b)."""

    def __init__(self, spec):
        self.A = np.array(spec["coef"])
        self.b = np.array(spec["intercept"])
        self.numeric = spec["numeric"]
        self.groups = spec["groups"]

    def encode(self, frame):
        X = np.zeros((len(frame), self.A.shape[1]))
        for name, index in self.numeric:
            X[:, index] = frame[name].astype(float).to_numpy()
        for name, levels, columns in self.groups:
            values = frame[name].astype(str).to_numpy()
            for level, column in zip(levels, columns):
                X[:, column] = values == level
        return X

    def predict_proba(self, frame):
        z = self.encode(frame) @ self.A.T + self.b
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    def predict(self, frame):
        return np.argmax(self.predict_proba(frame), axis=1)


def main(job_path, out_path):
    import dice_ml

    warnings.simplefilter("ignore")
    job = json.load(open(job_path))
    train = pd.read_csv(job["train_csv"])
    queries = pd.read_csv(job["queries_csv"])
    for name in job["categorical_names"]:
        train[name] = train[name].astype(str)
        queries[name] = queries[name].astype(str)
    data = dice_ml.Data(dataframe=train, continuous_features=job["continuous_names"], outcome_name=job["outcome"])
    model = dice_ml.Model(model=EncodedSoftmax(job["model"]), backend="sklearn")
    out = []
    for method in job["methods"]:
        explainer = dice_ml.Dice(data, model, method=method)
        for i, target in enumerate(job["targets"]):
            query = queries.iloc[[i]].drop(columns=[job["outcome"]], errors="ignore")
            np.random.seed(job["seed"] + i)
            start = time.perf_counter()
            try:
                extra = {"random_seed": job["seed"] + i} if method == "random" else {}
                result = explainer.generate_counterfactuals(
                    query, total_CFs=1, desired_class=int(target), features_to_vary=job["features_to_vary"],
                    permitted_range=job["permitted_range"], verbose=False, **extra)
                frame = result.cf_examples_list[0].final_cfs_df
                cf = None if frame is None or len(frame) == 0 else frame.iloc[0].drop(
                    labels=[job["outcome"]], errors="ignore").to_dict()
                error = ""
            except Exception as exc:  # DiCE raises when it finds nothing ("No counterfactuals found")
                cf, error = None, f"{type(exc).__name__}: {exc}"[:200]
            elapsed = time.perf_counter() - start
            out.append({"method": method, "query": i, "cf": cf, "time_s": elapsed, "error": error})
    json.dump(out, open(out_path, "w"), default=lambda v: v.item() if hasattr(v, "item") else str(v))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
