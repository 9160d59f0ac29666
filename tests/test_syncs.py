"""Host synchronisations in the training steps of the attention, contrastive and transfer models (issue 31).

On a GPU every read-back to the host (``.item()``, ``float(t)``, ``bool(t.any())``, ``nonzero`` ...) waits for
the device to finish, so a training step should make none. The fake accelerator (tests/fake_accelerator.py)
counts them by calling line. One training step here is what ``fit`` does with a batch already on the device:
zero the gradients, the model's loss, backward, an Adam step (the counts of ``fit`` itself are tested with it).
"""

from __future__ import annotations

import fake_accelerator as fake
import pytest
import torch
import torch.nn.functional as F

from mmcourse.attention import AttentionVQA, CrossModalAttention, MultiHeadAttention
from mmcourse.contrastive import LOGIT_SCALE_INIT, ContrastiveStep, ConvTextEncoder, DualEncoder, PatchSetEncoder
from mmcourse.data.shapes import ANSWERS, VOCAB
from mmcourse.transfer import MultiTaskVQA, multitask_step, shapes_task_answers

REASON = fake.unsupported()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"fake accelerator: {REASON}")


@pytest.fixture(scope="module")
def device() -> torch.device:
    return fake.device()


def _batch(n=8, seed=0, task=None):
    g = torch.Generator().manual_seed(seed)
    return {"image": torch.rand(n, 3, 32, 32, generator=g),
            "question_ids": torch.randint(1, len(VOCAB), (n, 9), generator=g),
            "caption_ids": torch.randint(1, len(VOCAB), (n, 12), generator=g),
            "answer_id": torch.randint(0, 2, (n,), generator=g),
            "task": torch.arange(n) % 4 if task is None else task}


def _vqa_step(model, batch):
    return F.cross_entropy(model(batch["image"], batch["question_ids"]).scores, batch["answer_id"])


def _syncs_of_a_step(model, step, batch, device):
    """The host synchronisations of the second training step (the first creates Adam's state)."""
    model.to(device).train()
    batch = {k: v.to(device) for k, v in batch.items()}
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    for _ in range(2):
        with fake.count_syncs() as syncs:
            optimizer.zero_grad(set_to_none=True)
            step(model, batch).backward()
            optimizer.step()
    return syncs


@pytest.mark.parametrize("both_directions", [False, True])
def test_an_attention_vqa_training_step_makes_no_host_sync(device, both_directions):
    """Was 7 (one direction) and 14 (both): a NaN check of every query, key and value, and in split/merge_heads."""
    torch.manual_seed(0)
    model = AttentionVQA(len(VOCAB), len(ANSWERS), both_directions=both_directions)
    assert dict(_syncs_of_a_step(model, _vqa_step, _batch(), device)) == {}


def test_a_contrastive_training_step_makes_no_host_sync_and_still_records_s(device):
    """Was 6: float(logit_scale) to record s, and finiteness checks of the embeddings and of s in clip_loss."""
    torch.manual_seed(0)
    model, step = DualEncoder(PatchSetEncoder(16), ConvTextEncoder(len(VOCAB), 16), 16), ContrastiveStep()
    assert dict(_syncs_of_a_step(model, step, _batch(), device)) == {}
    assert len(step.logit_scales) == 2 and all(type(s) is float for s in step.logit_scales)
    assert step.logit_scales[0] == torch.tensor(LOGIT_SCALE_INIT).item()  # s at the first step, bit for bit...
    assert step.logit_scales[1] != step.logit_scales[0]  # ...a copy, not the parameter the optimiser changes in place


def test_a_multitask_training_step_makes_one_host_sync(device):
    """Was 13 (with the attention encoder's 7): now one read-back of the task ids' range and each task's count,
    which cannot go without changing the CPU's results (see MultiTaskVQA.forward)."""
    torch.manual_seed(0)
    for uncertainty in (False, True):
        model = MultiTaskVQA(shapes_task_answers(), uncertainty=uncertainty)
        syncs = _syncs_of_a_step(model, multitask_step, _batch(), device)
        assert sum(syncs.values()) == 1 and all(where.startswith("mmcourse/transfer.py:") for where in syncs)


def test_the_multitask_model_gives_the_cpus_results_on_the_device_with_a_task_absent(device):
    """Bit for bit, a head without rows is not called (its parameters get no gradient), and bad ids are named."""
    batch = _batch(7, task=torch.tensor([0, 0, 3, 3, 0, 3, 0]))  # tasks 1 and 2 absent
    results = []
    for where in ("cpu", device):
        torch.manual_seed(0)
        model = MultiTaskVQA(shapes_task_answers()).to(where)
        b = {k: v.to(where) for k, v in batch.items()}
        output = model(b["image"], b["question_ids"], b["task"])
        model.loss(output, b["answer_id"], b["task"]).total.backward()
        results.append((output.scores.detach().cpu(),
                        {n: None if p.grad is None else p.grad.cpu() for n, p in model.named_parameters()}))
        with pytest.raises(ValueError, match=r"task: expected ids in \[0, 4\), got values from -1 to 3"):
            model(b["image"][:2], b["question_ids"][:2], torch.tensor([-1, 3], device=where))
    (cpu_scores, cpu_grads), (dev_scores, dev_grads) = results
    assert torch.equal(cpu_scores, dev_scores)
    assert cpu_grads["task_heads.1.1.weight"] is None and dev_grads["task_heads.1.1.weight"] is None
    assert cpu_grads.keys() == dev_grads.keys()
    assert all((a is None and b is None) or torch.equal(a, b) for a, b in zip(cpu_grads.values(), dev_grads.values()))


def test_multi_head_attention_called_directly_still_checks_for_nan_on_the_device(device):
    torch.manual_seed(0)
    nan, x = torch.full((2, 5, 8), float("nan"), device=device), torch.randn(2, 5, 8, device=device)
    with pytest.raises(ValueError, match="query: contains NaN"):
        MultiHeadAttention(8, 2).to(device)(nan, x, x)
    out, _ = CrossModalAttention(8, 2).to(device)(nan, x)  # inside a model: no check, no read-back
    assert out.shape == (2, 5, 8)
