"""mmcourse.attention against PyTorch's own attention, on random shapes, masks and head counts."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mmcourse.attention import (
    AttentionVQA,
    CoAttention,
    CrossModalAttention,
    CrossModalTransformer,
    MultiHeadAttention,
    VQAOutput,
    merge_heads,
    scaled_dot_product_attention,
    split_heads,
)
from mmcourse.data import ANSWERS, VOCAB
from mmcourse.encoders import PatchEncoder, TokenSequenceEncoder
from mmcourse.metrics import Grounding, grounding_accuracy, patch_masks


def _random_mask(shape, generator, p=0.6):
    """Random bool mask (True = may attend) where every row keeps at least one key."""
    mask = torch.rand(shape, generator=generator) < p
    mask[..., 0] |= ~mask.any(-1)
    return mask


def test_hand_computed_example():
    # One query, two keys: scores 1/sqrt(2) and 0, so the weights are a softmax of those two.
    q = torch.tensor([[1.0, 0.0]])
    k = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    v = torch.tensor([[10.0], [20.0]])
    out, weights = scaled_dot_product_attention(q, k, v)
    a = math.exp(1 / math.sqrt(2))
    expected = torch.tensor([[a / (a + 1), 1 / (a + 1)]])
    assert torch.allclose(weights, expected)
    assert torch.allclose(out, expected @ v)
    out, weights = scaled_dot_product_attention(q, k, v, mask=torch.tensor([[False, True]]))
    assert weights.tolist() == [[0.0, 1.0]] and out.tolist() == [[20.0]]


@pytest.mark.parametrize("shape", [(5, 4, 8, 3), (2, 3, 1, 7, 5, 6), (1, 1, 1, 1), (9, 2, 16, 4)],
                         ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("masked", [False, True])
def test_scaled_dot_product_matches_torch(shape, masked):
    *lead, l_q, l_k, d = shape
    g = torch.Generator().manual_seed(sum(shape))
    q = torch.randn(*lead, l_q, d, generator=g)
    k = torch.randn(*lead, l_k, d, generator=g)
    v = torch.randn(*lead, l_k, d + 2, generator=g)
    mask = _random_mask((*lead, l_q, l_k), g) if masked else None
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    assert out.shape == (*lead, l_q, d + 2) and weights.shape == (*lead, l_q, l_k)
    assert torch.allclose(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask), atol=1e-5)
    assert torch.allclose(weights.sum(-1), torch.ones(weights.shape[:-1]))
    if masked:
        assert (weights[~mask] == 0).all()


def test_mask_broadcasts_like_torch():
    g = torch.Generator().manual_seed(1)
    q, k, v = torch.randn(2, 3, 4, 8, generator=g), torch.randn(2, 3, 6, 8, generator=g), torch.randn(2, 3, 6, 5,
                                                                                                     generator=g)
    mask = _random_mask((2, 1, 1, 6), g)  # one key padding mask per batch item
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    assert torch.allclose(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask), atol=1e-5)
    assert (weights.masked_select(~mask.expand(2, 3, 4, 6)) == 0).all()


def test_fully_masked_rows_give_zeros_not_nan():
    g = torch.Generator().manual_seed(2)
    q = torch.randn(2, 3, 4, generator=g, requires_grad=True)
    k, v = torch.randn(2, 5, 4, generator=g), torch.randn(2, 5, 3, generator=g)
    mask = _random_mask((2, 3, 5), g)
    mask[0, 1] = False  # query 1 of item 0 may attend to nothing
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    assert not out.isnan().any() and not weights.isnan().any()
    assert (weights[0, 1] == 0).all() and (out[0, 1] == 0).all()
    assert torch.allclose(weights[0, 0].sum(), torch.tensor(1.0)) and torch.allclose(weights[1].sum(-1), torch.ones(3))
    assert torch.allclose(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask), atol=1e-5)  # torch agrees
    out.sum().backward()
    assert torch.isfinite(q.grad).all() and (q.grad[0, 1] == 0).all()


def test_scaled_dot_product_rejects_bad_input():
    q, k, v = torch.randn(2, 3, 4), torch.randn(2, 5, 4), torch.randn(2, 5, 6)
    with pytest.raises(ValueError, match=r"k: expected shape .* got \(2, 5, 3\)"):
        scaled_dot_product_attention(q, torch.randn(2, 5, 3), v)
    with pytest.raises(ValueError, match=r"v: expected .* got \(2, 4, 6\)"):
        scaled_dot_product_attention(q, k, torch.randn(2, 4, 6))
    with pytest.raises(ValueError, match="mask: expected a bool tensor"):
        scaled_dot_product_attention(q, k, v, mask=torch.ones(3, 5))
    with pytest.raises(ValueError, match=r"mask: expected a shape broadcastable to \(2, 3, 5\), got \(4, 5\)"):
        scaled_dot_product_attention(q, k, v, mask=torch.ones(4, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"mask: expected a shape broadcastable to \(2, 3, 5\), got \(4, 2, 3, 5\)"):
        scaled_dot_product_attention(q, k, v, mask=torch.ones(4, 2, 3, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"q: expected shape .* got \(4,\)"):
        scaled_dot_product_attention(torch.randn(4), k, v)
    with pytest.raises(ValueError, match="k: expected at least one key"):
        scaled_dot_product_attention(q, torch.randn(2, 0, 4), torch.randn(2, 0, 6))
    with pytest.raises(ValueError, match="q: contains NaN"):
        scaled_dot_product_attention(torch.full((2, 3, 4), float("nan")), k, v)


def test_split_and_merge_heads():
    x = torch.arange(2 * 3 * 8.0).reshape(2, 3, 8)
    heads = split_heads(x, 4)
    assert heads.shape == (2, 4, 3, 2)
    assert heads[1, 2, 0].tolist() == x[1, 0, 4:6].tolist()  # head 2 holds features 4 and 5
    assert torch.equal(merge_heads(heads), x)
    with pytest.raises(ValueError, match=r"x: expected shape \(B, L, E\) with E divisible by num_heads=3"):
        split_heads(x, 3)
    with pytest.raises(ValueError, match=r"x: expected shape \(B, H, L, D\), got \(2, 3, 8\)"):
        merge_heads(x)


CONFIGS = [  # embed_dim, num_heads, kdim, vdim, bias
    (8, 1, None, None, True),
    (8, 2, None, None, True),
    (12, 3, None, None, False),
    (16, 4, 6, 10, True),
    (16, 8, 5, 5, False),
]


@pytest.mark.parametrize("embed_dim, num_heads, kdim, vdim, bias", CONFIGS)
@pytest.mark.parametrize("padding", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_multi_head_attention_matches_torch(embed_dim, num_heads, kdim, vdim, bias, padding, masked):
    torch.manual_seed(embed_dim + num_heads)
    theirs = nn.MultiheadAttention(embed_dim, num_heads, kdim=kdim, vdim=vdim, bias=bias, batch_first=True).eval()
    ours = MultiHeadAttention.from_torch(theirs)
    g = torch.Generator().manual_seed(3)
    b, l_q, l_k = 3, 4, 7
    query = torch.randn(b, l_q, embed_dim, generator=g)
    key = torch.randn(b, l_k, kdim or embed_dim, generator=g)
    value = torch.randn(b, l_k, vdim or embed_dim, generator=g)
    kpm = torch.arange(l_k).expand(b, l_k) >= torch.tensor([[7], [5], [2]]) if padding else None  # real lengths 7, 5, 2
    mask = _random_mask((l_q, l_k), g) if masked else None
    if padding and masked:
        mask[:, 0] = True  # keep a real key in every row, so that torch gives no NaN
    expected, expected_avg = theirs(query, key, value, key_padding_mask=kpm, attn_mask=None if mask is None else ~mask)
    _, expected_heads = theirs(query, key, value, key_padding_mask=kpm, attn_mask=None if mask is None else ~mask,
                               average_attn_weights=False)
    out, weights = ours(query, key, value, key_padding_mask=kpm, mask=mask)
    assert out.shape == (b, l_q, embed_dim) and weights.shape == (b, num_heads, l_q, l_k)
    assert torch.allclose(out, expected, atol=1e-5)
    assert torch.allclose(weights, expected_heads, atol=1e-6)
    assert torch.allclose(weights.mean(1), expected_avg, atol=1e-6)
    assert torch.allclose(weights.sum(-1), torch.ones(b, num_heads, l_q))
    if padding:
        assert (weights.permute(0, 3, 1, 2)[kpm] == 0).all()  # no weight on a padding key


def test_from_torch_copies_parameters_and_trains():
    theirs = nn.MultiheadAttention(8, 2, batch_first=True)
    ours = MultiHeadAttention.from_torch(theirs)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in theirs.parameters())
    x = torch.randn(2, 5, 8)
    ours(x, x, x)[0].sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in ours.parameters())
    assert theirs.in_proj_weight.grad is None  # a copy, not shared storage


def test_from_torch_and_forward_reject_bad_input():
    with pytest.raises(ValueError, match="m: expected a torch.nn.MultiheadAttention, got Linear"):
        MultiHeadAttention.from_torch(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="batch_first=True"):
        MultiHeadAttention.from_torch(nn.MultiheadAttention(8, 2))
    with pytest.raises(ValueError, match="add_bias_kv"):
        MultiHeadAttention.from_torch(nn.MultiheadAttention(8, 2, add_bias_kv=True, batch_first=True))
    with pytest.raises(ValueError, match="num_heads: expected a divisor of embed_dim=8, got 3"):
        MultiHeadAttention(8, 3)
    m = MultiHeadAttention(8, 2, kdim=4)
    x = torch.randn(2, 5, 8)
    with pytest.raises(ValueError, match=r"key: expected shape \(B, L, 4\), got \(2, 5, 8\)"):
        m(x, x, x)
    with pytest.raises(ValueError, match="key, value: expected the same"):
        m(x, torch.randn(2, 5, 4), torch.randn(2, 6, 8))
    with pytest.raises(ValueError, match=r"key_padding_mask: expected a bool tensor of shape \(2, 5\)"):
        m(x, torch.randn(2, 5, 4), x, key_padding_mask=torch.zeros(2, 5))
    with pytest.raises(ValueError, match=r"mask: expected a shape broadcastable to \(2, 2, 5, 5\), got \(3, 5\)"):
        m(x, torch.randn(2, 5, 4), x, mask=torch.ones(3, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="mask: expected a bool tensor"):
        m(x, torch.randn(2, 5, 4), x, mask=torch.ones(5, 5))
    with pytest.raises(ValueError, match="expected a non-empty batch"):
        m(x[:0], torch.randn(0, 5, 4), x[:0])
    with pytest.raises(ValueError, match="query: contains NaN"):
        m(torch.full((2, 5, 8), float("nan")), torch.randn(2, 5, 4), x)


def test_cross_modal_attention_ignores_padding_and_keeps_shapes():
    torch.manual_seed(0)
    block = CrossModalAttention(16, 4, source_dim=8).eval()
    target, source = torch.randn(2, 3, 16), torch.randn(2, 6, 8)
    padding = torch.tensor([[False] * 6, [False] * 4 + [True] * 2])
    out, weights = block(target, source, padding)
    assert out.shape == (2, 3, 16) and weights.shape == (2, 4, 3, 6)
    assert (weights[1, ..., 4:] == 0).all() and torch.allclose(weights.sum(-1), torch.ones(2, 4, 3))
    changed = source.clone()
    changed[1, 4:] = 100.0  # what sits in the padding must not matter
    assert torch.allclose(block(target, changed, padding)[0], out, atol=1e-6)


def test_cross_modal_block_is_pre_ln_attention_and_feed_forward_with_residuals():
    """out = X + FF(LN(X)) with X = T + MHA(LN(T), LN(S), LN(S)): the equation and the picture of lesson 03."""
    torch.manual_seed(1)
    block = CrossModalAttention(8, 2, source_dim=6).eval()
    for norm in (block.norm_target, block.norm_source, block.norm_ff):  # not the identity LayerNorms of a new block
        nn.init.normal_(norm.weight)
        nn.init.normal_(norm.bias)
    t, s = torch.randn(3, 4, 8), torch.randn(3, 5, 6)
    with torch.no_grad():
        attended, weights = block.attn(block.norm_target(t), block.norm_source(s), block.norm_source(s))
        x = t + attended
        expected = x + block.ff(block.norm_ff(x))
        out, w = block(t, s)
    assert torch.allclose(out, expected, atol=1e-6) and torch.equal(w, weights)


def test_cross_modal_transformer_attends_in_both_directions():
    torch.manual_seed(0)
    co = CrossModalTransformer(16, 2, num_layers=2)
    text, image = torch.randn(3, 5, 16), torch.randn(3, 9, 16)
    padding = torch.zeros(3, 5, dtype=torch.bool)
    padding[0, 3:] = True
    result = co(text, image, padding)
    assert isinstance(result, CoAttention)
    assert result.text.shape == (3, 5, 16) and result.image.shape == (3, 9, 16)
    assert result.text_to_image.shape == (3, 2, 5, 9) and result.image_to_text.shape == (3, 2, 9, 5)
    assert (result.image_to_text[0, ..., 3:] == 0).all()


@pytest.mark.parametrize("both", [False, True])
def test_attention_vqa_shapes_and_gradients(both):
    torch.manual_seed(0)
    model = AttentionVQA(len(VOCAB), len(ANSWERS), dim=16, num_heads=2, both_directions=both)
    image, tokens = torch.rand(4, 3, 32, 32), torch.randint(2, len(VOCAB), (4, 6))
    tokens[:, 5] = 0
    out = model(image, tokens)
    assert isinstance(out, VQAOutput) and out.scores.shape == (4, len(ANSWERS))
    assert out.text_to_image.shape == (4, 2, 6, 64)
    assert out.image_to_text.shape == (4, 2, 64, 6) if both else out.image_to_text is None
    out.scores.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


# ----- grounding accuracy and the encoders it relies on -----

def _hand_made():
    """Two 4x4 images in 2x2 patches of 2x2 pixels (P = 4, numbered row by row)."""
    masks = torch.zeros(2, 2, 4, 4, dtype=torch.bool)
    masks[0, 0, 0:2, 0:2] = True  # image 0, object 0: exactly patch 0
    masks[0, 1, 2:4, 1:3] = True  # image 0, object 1: touches patches 2 and 3
    masks[1, 0, 1:3, 1:3] = True  # image 1, object 0: touches all four patches
    weights = torch.tensor([
        [[0.7, 0.1, 0.1, 0.1], [0.1, 0.6, 0.2, 0.1], [0.0, 0.1, 0.2, 0.7]],
        [[0.1, 0.2, 0.3, 0.4], [0.25, 0.25, 0.25, 0.25], [0.9, 0.1, 0.0, 0.0]],
    ])
    return weights, masks


def test_patch_masks_by_hand():
    _, masks = _hand_made()
    assert patch_masks(masks, 2).tolist() == [[[True, False, False, False], [False, False, True, True]],
                                              [[True, True, True, True], [False, False, False, False]]]


def test_grounding_accuracy_by_hand():
    weights, masks = _hand_made()
    # Words naming objects: (0,0)->0 hit (chance 1/4), (0,1)->1 miss (2/4), (0,2)->1 hit (2/4),
    # (1,2)->0 hit (4/4). Word (1,0) and (1,1) name nothing and do not count.
    result = grounding_accuracy(weights, masks, torch.tensor([[0, 1, 1], [-1, -1, 0]]))
    assert isinstance(result, Grounding)
    assert result.accuracy == pytest.approx(3 / 4) and result.chance == pytest.approx((1 / 4 + 2 / 4 + 2 / 4 + 1) / 4)
    result = grounding_accuracy(weights, masks, torch.tensor([[-1, -1, 0], [-1, -1, -1]]))
    assert tuple(result) == (0.0, 0.25)


def test_grounding_accuracy_of_perfect_and_uniform_attention():
    g = torch.Generator().manual_seed(0)
    masks = torch.rand(6, 3, 8, 8, generator=g) < 0.3
    refers = torch.randint(0, 3, (6, 5), generator=g)
    inside = patch_masks(masks, 4)[torch.arange(6)[:, None], refers]  # (6, 5, 16)
    perfect = inside.float() / inside.float().sum(-1, keepdim=True)
    assert grounding_accuracy(perfect, masks, refers).accuracy == 1.0
    uniform = grounding_accuracy(torch.full((6, 5, 16), 1 / 16), masks, refers)  # argmax: always patch 0
    assert uniform.accuracy == pytest.approx(inside[..., 0].float().mean().item())
    assert uniform.chance == pytest.approx(inside.float().mean().item())


def test_grounding_accuracy_rejects_bad_input():
    weights, masks = _hand_made()
    refers = torch.tensor([[0, 1, 1], [-1, -1, 0]])
    with pytest.raises(ValueError, match=r"weights: expected shape \(B, L, P\)"):
        grounding_accuracy(weights[:, None], masks, refers)
    with pytest.raises(ValueError, match="P = 5"):
        grounding_accuracy(torch.rand(2, 3, 5), masks, refers)
    with pytest.raises(ValueError, match=r"masks: expected shape \(2, K, H, W\), got \(1, 2, 4, 4\)"):
        grounding_accuracy(weights, masks[:1], refers)
    with pytest.raises(ValueError, match="token_to_object: expected an integer tensor of shape"):
        grounding_accuracy(weights, masks, refers.float())
    with pytest.raises(ValueError, match="below K=2, got 2"):
        grounding_accuracy(weights, masks, torch.tensor([[0, 2, 1], [-1, -1, 0]]))
    with pytest.raises(ValueError, match="no token refers to an object"):
        grounding_accuracy(weights, masks, torch.full((2, 3), -1))
    with pytest.raises(ValueError, match="grid: expected a divisor"):
        patch_masks(masks, 3)


def test_patch_encoder_numbers_patches_like_patch_masks():
    """A single object in grid cell (row 2, column 5) changes that patch's embedding most."""
    torch.manual_seed(0)
    encoder = PatchEncoder(out_dim=8, context=0)
    image = torch.full((1, 3, 32, 32), 0.08)
    masks = torch.zeros(1, 1, 32, 32, dtype=torch.bool)
    masks[0, 0, 9:11, 21:23] = True  # rows 8-11 and columns 20-23 make patch 2 * 8 + 5 = 21
    with torch.no_grad():
        empty = encoder(image)
        image[:, :, masks[0, 0]] = torch.tensor([0.9, 0.15, 0.15])[:, None]
        changed = (encoder(image) - empty).abs().sum(-1)[0]  # (64,)
    assert changed.argmax().item() == 21 == patch_masks(masks, 8)[0, 0].nonzero().item()
    assert (changed[torch.arange(64) != 21] == 0).all()  # no context: no other patch sees it
    with pytest.raises(ValueError, match=r"image: expected shape \(B, 3, 32, 32\)"):
        encoder(torch.rand(2, 3, 28, 28))
    with pytest.raises(ValueError, match="patch_size"):
        PatchEncoder(patch_size=5)


def test_token_sequence_encoder_keeps_the_sequence_and_marks_padding():
    encoder = TokenSequenceEncoder(len(VOCAB), out_dim=8, max_length=6)
    tokens = torch.tensor([VOCAB.encode("what colour is the triangle", 6), VOCAB.encode("a b", 6)])
    out, padding = encoder(tokens)
    assert out.shape == (2, 6, 8)
    assert padding.tolist() == [[False] * 5 + [True], [False, False] + [True] * 4]
    with pytest.raises(ValueError, match="at most max_length=6"):
        encoder(torch.ones(1, 7, dtype=torch.long))
    with pytest.raises(ValueError, match="integer token ids"):
        encoder(torch.ones(1, 3))
