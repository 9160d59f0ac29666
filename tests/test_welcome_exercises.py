"""Lesson 00's build (the training loop, checked against ``fit``) and its experiment (the shuffled-labels
control): a right answer passes, the common wrong ones fail with a message that says what differs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mmcourse.exercises import PREDICTIONS, ExerciseError, check, predict
from mmcourse.experiments import welcome as experiments
from mmcourse.train import Adam, fit


def _loop(zero_grad: bool = True, weigh: bool = True, shuffle: bool = True):
    def train(model, images, labels, epochs=3, batch_size=64, lr=1e-3, seed=0):
        optimizer = Adam(model.parameters(), lr=lr)
        generator = torch.Generator().manual_seed(seed)
        n, epoch_losses = len(labels), []
        for _ in range(epochs):
            order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
            total = 0.0
            for start in range(0, n, batch_size):
                idx = order[start : start + batch_size]
                loss = F.cross_entropy(model(images[idx]), labels[idx])
                if zero_grad:
                    optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += loss.item() * (len(idx) if weigh else 1)
            epoch_losses.append(total / (n if weigh else -(-n // batch_size)))
        return epoch_losses

    return train


def test_a_hand_written_loop_matches_fit(capsys):
    assert check("training_loop", _loop(), must_pass=True)
    assert "all 3 cases match" in capsys.readouterr().out


@pytest.mark.parametrize("mistake, message", [
    # the same losses (each is measured before its step), but the second step adds the first's gradients
    ({"zero_grad": False}, "(one epoch of 8 rows in batches of 4): the result['weight after training'] has wrong"),
    ({"weigh": False}, "passed before it: case 1 (one epoch of 8 rows in batches of 4)"),
    ({"shuffle": False}, "case 1 of 3 (one epoch of 8 rows in batches of 4): item 0 of the result['epoch losses']"),
])
def test_the_common_mistakes_of_a_training_loop_are_caught(mistake, message, capsys):
    assert not check("training_loop", _loop(**mistake))
    out = capsys.readouterr().out
    assert message in out, out


def test_a_loop_that_calls_fit_is_rejected(capsys):
    def lazy(model, images, labels, epochs=3, batch_size=64, lr=1e-3, seed=0):
        return fit(model, {"image": images, "label": labels}, epochs=epochs, batch_size=batch_size, lr=lr,
                   seed=seed, device="cpu", progress=False).train_loss

    assert not check("training_loop", lazy)
    assert "your function calls `mmcourse.train.fit`" in capsys.readouterr().out
    assert not check("training_loop", experiments.train_with_fit)
    assert "your function calls `mmcourse.experiments.welcome.train_with_fit`" in capsys.readouterr().out


def test_the_shuffled_label_control_is_judged_by_what_it_measures(capsys):
    predict("shuffled_labels", 0.1)
    assert check("shuffled_labels", lambda labels, g: labels[torch.randperm(len(labels), generator=g)], must_pass=True)
    assert not check("shuffled_labels", lambda labels, generator: labels)  # no control at all
    out = capsys.readouterr().out
    assert "misses an outcome" in out and "unchanged = 1" in out and "you predicted" in out
    assert not check("shuffled_labels", lambda labels, generator: labels.float() / 10)
    assert "your attempt was rejected: control: expected labels of shape" in capsys.readouterr().out
    assert not check("shuffled_labels", lambda labels, generator: torch.zeros_like(labels))  # not the same labels
    assert "control: expected the same labels in another order" in capsys.readouterr().out

    def renamed(labels, generator):  # 1 -> 3 -> 7 -> 1: digits as common as each other, the pairing kept
        out = labels.clone()
        for a, b in ((1, 3), (3, 7), (7, 1)):
            out[labels == a] = b
        return out

    assert not check("shuffled_labels", renamed)
    out = capsys.readouterr().out
    assert "\N{BALLOT X} test accuracy under the best one-to-one renaming" in out, out
    with pytest.raises(ExerciseError, match="misses an outcome"):
        check("shuffled_labels", lambda labels, generator: labels, must_pass=True)
    PREDICTIONS.pop("shuffled_labels", None)
