"""Lesson 07's exercises: the worked solutions pass, and typical mistakes are caught and explained."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mmcourse.contrastive import LOGIT_SCALE_MAX, DualEncoder, clip_loss
from mmcourse.exercises import EXERCISES, ExerciseError, check
from mmcourse.experiments import contrastive as ex


def _clip(image, text, s, normalise=True, both=True):
    if normalise:
        image, text = F.normalize(image, dim=1), F.normalize(text, dim=1)
    logits = s.exp() * image @ text.T
    targets = torch.arange(len(logits))
    row = F.cross_entropy(logits, targets)
    return (row + F.cross_entropy(logits.T, targets)) / 2 if both else row


def _ndcg(scores, relevance, k, gain=lambda r: r):
    discount = 1 / torch.log2(torch.arange(2, k + 2).float())
    dcg = (gain(relevance[scores.argsort(descending=True)[:k]]) * discount).sum()
    ideal = (gain(relevance.sort(descending=True).values[:k]) * discount).sum()
    return (dcg / ideal).item() if ideal > 0 else 0.0


def test_ndcg_exercise(capsys):
    assert check("ndcg_one_query", _ndcg)
    assert not check("ndcg_one_query", lambda s, r, k: _ndcg(s, r, k, gain=lambda x: 2**x - 1))  # another gain
    assert "case 1 of 5" in capsys.readouterr().out
    assert not check("ndcg_one_query", lambda s, r, k: _ndcg(-s, r, k))  # ranked lowest first
    # forgetting the convention for a query with nothing relevant: 0 / 0
    assert not check("ndcg_one_query", lambda s, r, k: (lambda d, i: (d / i).item())(
        *(torch.tensor(1.0) * 0, torch.tensor(0.0))) if r.sum() == 0 else _ndcg(s, r, k))
    assert "case 5 of 5" in capsys.readouterr().out


def test_reordered_captions_exercise(capsys):
    def fixed(image, text, order, s):
        return _clip(image, text[order.argsort()], s)

    def fixed_with_the_package(image, text, order, s):  # the bug is the order: the fix may call clip_loss
        return clip_loss(image, text[order.argsort()], s)

    def buggy(image, text, order, s):  # the lesson's: the permutation applied again instead of its inverse
        return _clip(image, text[order], s)

    def targets_ignore_order(image, text, order, s):
        return _clip(image, text, s)

    assert check("reordered_captions_loss", fixed, must_pass=True)
    assert "The bug:" in capsys.readouterr().out  # the solution cell explains
    assert check("reordered_captions_loss", fixed_with_the_package)
    assert "Open the solution cell below" in capsys.readouterr().out  # a learner's fix is pointed there
    assert not check("reordered_captions_loss", buggy)
    out = capsys.readouterr().out
    assert "case 3 of 4 (three captions in a cycle)" in out and "The bug:" not in out  # a swap is its own inverse
    assert not check("reordered_captions_loss", targets_ignore_order)
    assert "case 2 of 4 (two captions swapped)" in capsys.readouterr().out
    assert not check("reordered_captions_loss", lambda i, t, o, s: (  # the same targets in both directions
        F.cross_entropy(s.exp() * F.normalize(i, dim=1) @ F.normalize(t, dim=1).T, o)
        + F.cross_entropy((s.exp() * F.normalize(i, dim=1) @ F.normalize(t, dim=1).T).T, o)) / 2)
    assert "case 3 of 4" in capsys.readouterr().out


# --- The build: MyDualEncoder and my_clip_step -------------------------------------------------------------------


class Given(nn.Module):
    """The stub's __init__, as the lesson gives it."""

    def __init__(self, image_encoder, text_encoder, dim=64, temperature=0.07):
        super().__init__()
        self.image_encoder, self.text_encoder = image_encoder, text_encoder
        self.image_projection = nn.Linear(image_encoder.out_dim, dim, bias=False)
        self.text_projection = nn.Linear(text_encoder.out_dim, dim, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / temperature)))


def _encoder(normalise=True, dim=1, scale=lambda s: s, swap=False, outputs=3):
    class Built(Given):
        def forward(self, image, text):
            image_emb = self.image_projection(self.image_encoder(image))
            text_emb = self.text_projection(self.text_encoder(text))
            if normalise:
                image_emb, text_emb = F.normalize(image_emb, dim=dim), F.normalize(text_emb, dim=dim)
            if swap:
                image_emb, text_emb = text_emb, image_emb
            return (image_emb, text_emb, scale(self.logit_scale))[:outputs]

    return Built


def _step(both=True, halve=True, zero_grad=True, clamp="after", scale=torch.exp, under_no_grad=True,
          lower_bound=True):
    def step(model, batch, optimizer):
        if clamp == "before":
            with torch.no_grad():
                model.logit_scale.clamp_(0, LOGIT_SCALE_MAX)
        image_emb, text_emb, s = model(batch["image"], batch["caption_ids"])
        logits = scale(s) * image_emb @ text_emb.T
        targets = torch.arange(len(logits))
        loss = F.cross_entropy(logits, targets) + (F.cross_entropy(logits.T, targets) if both else 0)
        loss = loss / 2 if both and halve else loss
        if zero_grad:
            optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if clamp == "after":
            bounds = (0, LOGIT_SCALE_MAX) if lower_bound else (None, LOGIT_SCALE_MAX)
            if under_no_grad:
                with torch.no_grad():
                    model.logit_scale.clamp_(*bounds)
            else:
                model.logit_scale.clamp_(*bounds)
        return loss

    return step


def test_the_build_solutions_pass_written_in_other_orders(capsys):
    assert check("dual_encoder", _encoder(), must_pass=True)
    assert check("clip_step", _step(), must_pass=True)

    def einsum_and_log_softmax(model, batch, optimizer):  # the same step, other operations and order
        image_emb, text_emb, s = model(batch["image"], batch["caption_ids"])
        logits = torch.einsum("id,jd->ij", image_emb, text_emb) * s.exp()
        d = torch.arange(len(logits))
        loss = -(logits.log_softmax(1)[d, d].mean() + logits.log_softmax(0)[d, d].mean()) / 2
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        model.logit_scale.data.clamp_(min=0.0, max=math.log(100))
        return loss.detach()

    assert check("clip_step", einsum_and_log_softmax)
    assert "all 5 cases match" in capsys.readouterr().out


def test_common_mistakes_in_the_forward_are_caught(capsys):
    for wrong, expected in ((_encoder(normalise=False), "case 1 of 3 (4 scenes and captions"),
                            (_encoder(dim=0), "the result['image embeddings'] has wrong values"),
                            (_encoder(scale=torch.exp), "the result['logit_scale s'] has wrong values"),
                            (_encoder(swap=True), "the result['image embeddings'] has wrong values"),
                            (_encoder(outputs=2), "forward should return three things")):
        assert not check("dual_encoder", wrong)
        assert expected in capsys.readouterr().out


def test_common_mistakes_in_the_step_are_caught(capsys):
    for wrong, expected in (
            (_step(both=False), "case 1 of 5 (Adam (lr 0.01), 6 pairs of scenes and captions: the loss of both "
                                "directions): item 0 of the result['loss']"),
            (_step(halve=False), "item 0 of the result['loss']"),  # the sum of the two directions
            (_step(scale=lambda s: s), "item 0 of the result['loss']"),  # s instead of exp(s)
            (_step(zero_grad=False), "case 2 of 5 (4 pairs, gradients left from an earlier batch"),
            (_step(clamp=None), "case 4 of 5 (s just below log 100"),
            (_step(clamp="before"), "the result['logit_scale after the step'] has wrong values"),
            (_step(lower_bound=False), "case 5 of 5 (s just above 0"),
            (_step(under_no_grad=False), "raised RuntimeError: a leaf Variable that requires grad")):
        assert not check("clip_step", wrong)
        assert expected in capsys.readouterr().out


def test_the_steps_clamp_cases_move_s_past_its_bounds_without_the_clamp():
    """Cases 4 and 5 would pass a step without the clamp if Adam's first step did not move s past a bound."""
    cases = EXERCISES["clip_step"].cases()
    for case, past in ((cases[3], lambda s: s > LOGIT_SCALE_MAX + 1e-3), (cases[4], lambda s: s < -1e-3)):
        out = EXERCISES["clip_step"].drive(_step(clamp=None), *case.args)
        assert past(out["logit_scale after the step"].item())


def test_the_package_is_rejected_in_the_build(capsys):
    class Thin(DualEncoder):  # the package's class with a forward of its own that calls the package's
        def forward(self, image, text):
            return super().forward(image, text)

    for cls in (DualEncoder, Thin):
        assert not check("dual_encoder", cls)
        assert "your function calls `mmcourse.contrastive.DualEncoder.__init__`" in capsys.readouterr().out

    def with_clip_loss(model, batch, optimizer):
        loss = clip_loss(*model(batch["image"], batch["caption_ids"]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, LOGIT_SCALE_MAX)
        return loss

    def with_package_clamp(model, batch, optimizer):
        loss = _step(clamp=None)(model, batch, optimizer)
        model.clamp_logit_scale_()
        return loss

    for fn, name in ((ex.clip_step, "mmcourse.experiments.contrastive.clip_step"),
                     (with_clip_loss, "mmcourse.contrastive.clip_loss"),
                     (with_package_clamp, "mmcourse.contrastive.DualEncoder.clamp_logit_scale_")):
        assert not check("clip_step", fn)
        assert f"your function calls `{name}`" in capsys.readouterr().out
        with pytest.raises(ExerciseError, match="your function calls"):
            check("clip_step", fn, must_pass=True)


def test_the_build_stubs_are_not_done_yet(capsys):
    class Stub(Given):
        def forward(self, image, text):
            raise NotImplementedError

    def stub_step(model, batch, optimizer):
        raise NotImplementedError

    assert not check("dual_encoder", Stub) and not check("clip_step", stub_step)
    assert capsys.readouterr().out.count("not done yet") == 2


def test_the_package_step_is_the_step_of_dual_encoder_fit():
    """The reference of the step check (experiments.clip_step) and DualEncoder.fit's training give the same
    weights, step for step: clip_step is the package's step, not a second version of it."""
    g = torch.Generator().manual_seed(0)
    train = {"image": torch.rand(256, 3, 32, 32, generator=g),
             "caption_ids": torch.randint(1, 27, (256, 26), generator=g)}
    fitted, _ = ex.train_model(train, seed=3, epochs=1)  # 2 steps of 128, in fit's order
    built, losses = ex.train_build(DualEncoder, ex.clip_step, train, seed=3, steps=2)
    assert len(losses) == 2 and losses[0] == pytest.approx(math.log(128), abs=0.2)
    for name, value in fitted.state_dict().items():
        assert torch.allclose(value, built.state_dict()[name], atol=1e-6), name


# --- The experiment: a fixed temperature ----------------------------------------------------------------------


def test_the_temperature_experiment_judges_the_held_out_gain(capsys):
    from mmcourse.exercises import PREDICTIONS, predict

    predict("fixed_temperature", 0.5)
    capsys.readouterr()
    assert check("fixed_temperature", lambda: ex.SHORT_RUN_TEMPERATURE, must_pass=True)
    out = capsys.readouterr().out
    assert "meets every outcome" in out and "Recall@1 at tau = 1 = " in out
    assert not check("fixed_temperature", lambda: 1.0)  # the default: plain cosines, no gain at all
    out = capsys.readouterr().out
    assert "misses an outcome" in out and "your tau minus tau = 1 (both fixed, 58 steps) = 0 (needed > 0.1" in out
    assert "you predicted the held-out Recall@1 at the temperature you chose (a number from 0 to 1): 0.5" in out
    assert not check("fixed_temperature", lambda: 0.01)  # CLIP's floor: barely learns in 58 steps
    assert "misses an outcome" in capsys.readouterr().out
    PREDICTIONS.pop("fixed_temperature", None)


def test_a_temperature_out_of_range_is_rejected(capsys):
    for bad in (0.0, -1.0, 2000.0, float("nan"), "0.1", True):
        assert not check("fixed_temperature", lambda bad=bad: bad)
        assert "your attempt was rejected: temperature: expected a number from 0.01 to 1000" in capsys.readouterr().out

    def unfinished():
        raise NotImplementedError

    assert not check("fixed_temperature", unfinished)
    assert "not done yet" in capsys.readouterr().out


def test_the_lesson_imports_ndcg_after_its_exercise_and_the_build_solution_writes_the_loss_out():
    """Lesson 07 imports ndcg_at_k only after the exercise that asks for it; the worked build writes the loss and
    the clamp out (the find-the-bug fix may call clip_loss: its bug is the order of the captions)."""
    import re
    from pathlib import Path

    import jupytext

    notebook = jupytext.read(Path(__file__).parents[1] / "lessons" / "07_contrastive.py")
    sources = [cell.source for cell in notebook.cells if cell.cell_type == "code"]

    def first(pattern: str) -> int:
        return next(i for i, source in enumerate(sources) if re.search(pattern, source))

    assert max(i for i, s in enumerate(sources) if 'exercises.check("ndcg_one_query"' in s) < first(
        r"from mmcourse\.metrics import ndcg_at_k")
    solutions = {re.search(r"exercises\.check\(\"(\w+)\"", cell.source).group(1): cell.source
                 for cell in notebook.cells if "solution" in cell.metadata.get("tags", [])}
    assert set(solutions) == {"reordered_captions_loss", "dual_encoder", "ndcg_one_query", "fixed_temperature"}
    assert not re.search(r"\b(clip_loss|similarity|clamp_logit_scale_)\(", solutions["dual_encoder"])
    assert not re.search(r"\bndcg_at_k\(", solutions["ndcg_one_query"])
