"""Issue 31's device fixes in lessons 00, 03, 04 and 07's experiments and in mmcourse.alignment, on the fake
accelerator (tests/fake_accelerator.py): CUDA's placement rules on a CPU-only machine, with the CPU's numbers.

Each test runs a function on the fake device that broke a placement rule there before the fix (a tensor made
without ``device=``, a model returned on the device), and compares its result with the CPU's: the fake
device computes bit for bit as the CPU does, so results must be equal. Skipped, with the reason, where the
fake accelerator cannot be installed (a torch other than the course's).
"""

from __future__ import annotations

import fake_accelerator as fake
import pytest
import torch
from torch import nn

from mmcourse import alignment
from mmcourse.experiments import alignment as alignment_ex
from mmcourse.experiments import attention as attention_ex
from mmcourse.experiments import contrastive as contrastive_ex
from mmcourse.experiments import welcome as welcome_ex

REASON = fake.unsupported()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"fake accelerator: {REASON}")


@pytest.fixture(scope="module")
def device() -> torch.device:
    return fake.device()


def _on(device: torch.device, t: torch.Tensor) -> bool:
    return t.device == device and type(t) is fake.FakeDeviceTensor


def test_welcome_returns_its_model_on_the_cpu_in_eval_mode(device, monkeypatch):
    """Lesson 00 calls the model on ``av["test"]["image"]``, a CPU tensor, after training on a learner's GPU."""
    g = torch.Generator().manual_seed(0)
    av = {split: {"image": torch.rand(n, 1, 8, 8, generator=g), "label": torch.randint(0, 10, (n,), generator=g)}
          for split, n in (("train", 96), ("validation", 32), ("test", 32))}
    model, history, result = welcome_ex.train_image_model(av, 0, epochs=1, progress=False)  # on the CPU
    monkeypatch.setenv("MMCOURSE_DEVICE", fake.NAME)  # fit's default device, as a learner's GPU is chosen
    on_device, device_history, device_result = welcome_ex.train_image_model(av, 0, epochs=1, progress=False)
    assert all(p.device.type == "cpu" and type(p) is nn.Parameter for p in on_device.parameters())
    assert not on_device.training
    assert device_history.train_loss == history.train_loss and device_result == result
    with torch.no_grad():
        assert torch.equal(on_device(av["test"]["image"]), model.eval()(av["test"]["image"]))


def test_seen_classifier_scores_on_its_networks_device(device):
    images = torch.rand(3, 9, generator=torch.Generator().manual_seed(0))
    net = nn.Linear(9, len(contrastive_ex.SEEN))
    on_cpu = contrastive_ex.SeenClassifier(net)(images)
    scores = contrastive_ex.SeenClassifier(net.to(device))(images.to(device))
    assert _on(device, scores) and torch.equal(scores.cpu(), on_cpu)
    assert torch.isinf(on_cpu[:, contrastive_ex.UNSEEN]).all() and torch.isfinite(on_cpu[:, contrastive_ex.SEEN]).all()


def test_image_only_answers_on_the_devices_colours(device):
    colours = torch.tensor([[0, 1, -1], [2, 2, 1], [3, -1, -1]])
    answers = attention_ex.image_only_answers(colours.to(device))
    assert _on(device, answers) and torch.equal(answers.cpu(), attention_ex.image_only_answers(colours))


def test_bag_of_words_on_the_devices_captions(device):
    ids = torch.tensor([[3, 4, 3, 0, 0], [5, 0, 0, 0, 0]])
    counts = alignment_ex.bag_of_words(ids.to(device), vocabulary_size=6)
    assert _on(device, counts) and torch.equal(counts.cpu(), alignment_ex.bag_of_words(ids, vocabulary_size=6))


def test_linear_cca_features_are_float64_on_the_cpu_for_any_device(device):
    """Word counts and pooled pixels feed a float64 CCA that lives on the CPU; MPS has no float64."""
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, len(contrastive_ex.VOCAB), (40, 7), generator=g)
    image = torch.rand(40, 3, 32, 32, generator=g)
    cca = contrastive_ex.fit_linear_cca({"image": image, "caption_ids": ids}, n_components=4)
    with fake.settings(float64=False):  # an MPS-like device
        counts = contrastive_ex.word_counts(ids.to(device))
        pooled = contrastive_ex.pooled_pixels(image.to(device))
        embedded = contrastive_ex.embed(cca, {"image": image.to(device), "caption_ids": ids.to(device)})
    assert type(counts) is torch.Tensor and counts.dtype == torch.float64
    assert torch.equal(counts, contrastive_ex.word_counts(ids))
    assert type(pooled) is torch.Tensor and torch.equal(pooled, contrastive_ex.pooled_pixels(image))
    for got, expected in zip(embedded, contrastive_ex.embed(cca, {"image": image, "caption_ids": ids})):
        assert type(got) is torch.Tensor and torch.equal(got, expected)


def _spaces(n=200, d=8):
    g = torch.Generator().manual_seed(0)
    source = torch.randn(n, d, generator=g)
    return source, source @ alignment.random_rotation(d, generator=g), torch.arange(n)


def test_adversarial_alignment_trains_on_the_inputs_device(device):
    source, target, truth = _spaces()
    kwargs = dict(runs=2, steps=4, discriminator_steps=2, record_every=2, eval_rows=100, progress=False)
    expected = alignment.adversarial_alignment(source, target, truth=truth, **kwargs)
    result = alignment.adversarial_alignment(source.to(device), target.to(device), truth=truth, **kwargs)  # CPU truth
    assert _on(device, result.maps) and torch.equal(result.maps.cpu(), expected.maps)
    for name in ("maps", "discriminator_accuracy", "criterion", "precision"):
        got, want = getattr(result.history, name), getattr(expected.history, name)
        assert all(_on(device, a) and torch.equal(a.cpu(), b) for a, b in zip(got, want, strict=True)), name
    with pytest.raises(ValueError, match=r"target: expected a tensor on source's device \(fakegpu:0\), got one on cpu"):
        alignment.adversarial_alignment(source.to(device), target, steps=1, progress=False)


def test_regression_map_trains_on_the_inputs_device(device):
    x, y, _ = _spaces(300, 6)
    expected = alignment.regression_map(x, y, 0.5, steps=5, batch_size=32, progress=False)
    fitted = alignment.regression_map(x.to(device), y.to(device), 0.5, steps=5, batch_size=32, progress=False)
    assert _on(device, fitted.map.weight) and fitted.train_loss == expected.train_loss
    assert torch.equal(fitted.map.weight.cpu(), expected.map.weight)
    with pytest.raises(ValueError, match=r"y: expected a tensor on x's device \(fakegpu:0\), got one on cpu"):
        alignment.regression_map(x.to(device), y, steps=1, progress=False)
