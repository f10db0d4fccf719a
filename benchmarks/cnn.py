"""A tiny torch CNN on 28x28 digits with the scikit-learn classifier interface (a black box
for the benchmarks: ``sklearn.base.clone`` copies it, ``retrain_utility`` refits it and
``mde.wrap`` wraps it like any classifier with ``predict_proba``)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

__all__ = ["TinyCNN"]


def _network(n_classes: int, side: int) -> Any:
    import torch.nn as nn

    return nn.Sequential(
        nn.Unflatten(1, (1, side, side)),
        nn.Conv2d(1, 8, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * (side // 4) ** 2, n_classes),
    )


class TinyCNN(ClassifierMixin, BaseEstimator):
    """conv 8 -> pool -> conv 16 -> pool -> linear, trained with Adam on one CPU thread.

    Parameters
    ----------
    epochs : int
        Passes over the training data.
    batch_size : int
    lr : float
        Adam learning rate.
    weight_decay : float
        Adam's L2 penalty.
    scale : float
        Inputs are divided by ``scale`` (255 for raw pixels).
    random_state : int
        Seeds the initial weights and the batch order.
    """

    def __init__(
        self,
        epochs: int = 10,
        batch_size: int = 32,
        lr: float = 3e-3,
        weight_decay: float = 1e-4,
        scale: float = 255.0,
        random_state: int = 0,
    ) -> None:
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.scale = scale
        self.random_state = random_state

    def _tensor(self, X: np.ndarray) -> Any:
        import torch

        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(f"expected X of shape (n, {self.n_features_in_}); got {X.shape}.")
        return torch.from_numpy(X / np.float32(self.scale))

    def fit(self, X: np.ndarray, y: np.ndarray) -> TinyCNN:
        import torch

        X = np.asarray(X, dtype=np.float32)
        side = int(round(np.sqrt(X.shape[1])))
        if X.ndim != 2 or side * side != X.shape[1]:
            raise ValueError(
                f"TinyCNN needs square images flattened to (n, side*side); got {X.shape}."
            )
        self.classes_, codes = np.unique(np.asarray(y), return_inverse=True)
        self.n_features_in_ = X.shape[1]
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # the suite runs two fits in parallel on a shared 2-core machine
        try:
            torch.manual_seed(self.random_state)
            net = _network(len(self.classes_), side)
            opt = torch.optim.Adam(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
            Xt, yt = self._tensor(X), torch.from_numpy(codes.astype(np.int64))
            gen = torch.Generator().manual_seed(self.random_state)
            loss_fn = torch.nn.CrossEntropyLoss()
            net.train()
            for _ in range(self.epochs):
                for idx in torch.randperm(len(yt), generator=gen).split(self.batch_size):
                    opt.zero_grad()
                    loss_fn(net(Xt[idx]), yt[idx]).backward()
                    opt.step()
            net.eval()
        finally:
            torch.set_num_threads(threads)
        self.net_ = net
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            logits = self.net_(self._tensor(X))
        return torch.softmax(logits.double(), dim=1).numpy()

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]
