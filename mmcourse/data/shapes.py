"""Shapes & captions: small RGB scenes with captions, questions and pixel-level ground truth.

Each 32x32 scene holds one to three objects on a 3x3 grid of cells. An object has a shape
(circle, square, triangle; all different within a scene, so "the triangle" is never ambiguous),
a colour, a size and a grid position. Every scene comes with

- a templated caption ("a large red triangle at the top left and a small blue circle at the center"),
- a question about one object and its answer ("what colour is the triangle ?" -> "red"),
- token ids from the fixed vocabulary :data:`VOCAB`,
- ground truth: one mask per object, and for every caption and question token the index of the
  object it refers to (-1 for words such as "a", "at", "the").

Attribute combinations (for example red triangles) can be held out of the training split to test
whether a model generalises to combinations it never saw.
"""

from __future__ import annotations

import numpy as np

from .util import SPLITS, table

SHAPES = ["circle", "square", "triangle"]
COLOURS = ["red", "green", "blue", "yellow"]
# Chosen so that every pair stays clearly apart for normal vision and under simulated protanopia,
# deuteranopia and tritanopia (Machado, Oliveira and Fernandes 2009; see :func:`simulate_colour_vision`
# and tests/test_shapes.py), and stands out from the background: a learner with a red-green colour
# vision deficiency (about one man in twelve) can answer "what colour is the triangle?" too.
RGB = {
    "red": (0.85, 0.25, 0.30),
    "green": (0.30, 0.95, 0.60),
    "blue": (0.25, 0.40, 0.75),
    "yellow": (1.00, 0.80, 0.00),
}
SIZES = ["small", "large"]
HALF_EXTENT = {"small": 2.5, "large": 4.5}  # pixels from the centre to the edge of the shape
POSITIONS = ["top left", "top", "top right", "left", "center", "right", "bottom left", "bottom", "bottom right"]
BACKGROUND = (0.08, 0.08, 0.08)
IMAGE_SIZE = 32
MAX_OBJECTS = 3
_EDGES = [0, 11, 21, 32]  # the 3x3 grid of cells
QUESTION_TYPES = ["colour", "size", "position", "exists"]
ANSWERS = COLOURS + SIZES + POSITIONS + ["yes", "no"]
CAPTION_LENGTH = 26  # 3 objects x "a large red triangle at the top left" + 2 x "and"
QUESTION_LENGTH = 6  # "is there a red triangle ?"


# Machado, Oliveira and Fernandes (2009), "A Physiologically-based Model for Simulation of Color Vision
# Deficiency", IEEE TVCG 15(6), https://doi.org/10.1109/TVCG.2009.113: matrices for severity 1.0,
# applied to linear RGB.
COLOUR_VISION = {
    "normal": np.eye(3),
    "protanopia": np.array([[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216],
                            [-0.003882, -0.048116, 1.051998]]),
    "deuteranopia": np.array([[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413],
                              [-0.011820, 0.042940, 0.968881]]),
    "tritanopia": np.array([[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602],
                            [0.004733, 0.691367, 0.303900]]),
}


def simulate_colour_vision(rgb, condition: str) -> np.ndarray:
    """How sRGB colours in [0, 1] look with a colour vision deficiency (Machado et al. 2009, severity 1).

    The simulation works in linear RGB: decode the sRGB gamma, apply the condition's 3x3 matrix, clip,
    encode again. Shape: ``rgb`` (..., 3) -> (..., 3). ``condition``: one of :data:`COLOUR_VISION`.

    >>> simulate_colour_vision([1.0, 1.0, 1.0], "deuteranopia").round(2)
    array([1., 1., 1.])
    """
    if condition not in COLOUR_VISION:
        raise ValueError(f"condition: expected one of {sorted(COLOUR_VISION)}, got {condition!r}")
    rgb = np.asarray(rgb, dtype=np.float64)
    if rgb.shape[-1:] != (3,):
        raise ValueError(f"rgb: expected shape (..., 3), got {rgb.shape}")
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    seen = np.clip(linear @ COLOUR_VISION[condition].T, 0.0, 1.0)
    return np.where(seen <= 0.0031308, 12.92 * seen, 1.055 * seen ** (1 / 2.4) - 0.055)


class Vocab:
    """A fixed word list: ``encode`` text to padded ids, ``decode`` ids back to text.

    Id 0 is ``<pad>`` and id 1 is ``<unk>`` (any word not in the list).
    """

    pad_id, unk_id = 0, 1

    def __init__(self, words: list[str]) -> None:
        self.itos = ["<pad>", "<unk>", *words]
        self.stoi = {w: i for i, w in enumerate(self.itos)}

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, text: str, length: int | None = None) -> list[int]:
        """Split on spaces, map words to ids, pad with ``<pad>`` to ``length`` (error if longer)."""
        ids = [self.stoi.get(w, self.unk_id) for w in text.split()]
        if length is not None:
            if len(ids) > length:
                raise ValueError(f"text: {len(ids)} tokens do not fit in length={length}: {text!r}")
            ids += [self.pad_id] * (length - len(ids))
        return ids

    def decode(self, ids) -> str:
        """Ids (list or 1-D tensor) to text, dropping padding."""
        return " ".join(self.itos[int(i)] for i in ids if int(i) != self.pad_id)


_POSITION_WORDS = sorted({w for p in POSITIONS for w in p.split()})
VOCAB = Vocab(
    ["a", "and", "at", "the", "what", "is", "where", "there", "colour", "size", "?"]
    + SIZES + COLOURS + SHAPES + _POSITION_WORDS
)


def render(objects: list[dict], noise: float = 0.0, rng: np.random.Generator | None = None):
    """Draw objects on the grid. Returns image (3, 32, 32) float32 and masks (len(objects), 32, 32) bool.

    Each object is a dict with ``shape``, ``colour``, ``size`` (names), ``position`` (0..8) and
    ``offset`` (dy, dx) in pixels from the centre of its cell.
    """
    yy, xx = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE].astype(np.float32)
    image = np.empty((3, IMAGE_SIZE, IMAGE_SIZE), np.float32)
    image[:] = np.asarray(BACKGROUND, np.float32)[:, None, None]
    masks = np.zeros((len(objects), IMAGE_SIZE, IMAGE_SIZE), bool)
    for i, obj in enumerate(objects):
        row, col = divmod(obj["position"], 3)
        cy = (_EDGES[row] + _EDGES[row + 1] - 1) / 2 + obj["offset"][0]
        cx = (_EDGES[col] + _EDGES[col + 1] - 1) / 2 + obj["offset"][1]
        r = HALF_EXTENT[obj["size"]]
        dy, dx = yy - cy, xx - cx
        if obj["shape"] == "circle":
            mask = dy**2 + dx**2 <= r**2
        elif obj["shape"] == "square":
            mask = (np.abs(dy) <= 0.85 * r) & (np.abs(dx) <= 0.85 * r)
        else:  # triangle, apex up: the half-width grows from 0 at the top to r at the bottom
            mask = (dy >= -r) & (dy <= r) & (np.abs(dx) <= (dy + r) / 2 + 0.5)
        masks[i] = mask
        image[:, mask] = np.asarray(RGB[obj["colour"]], np.float32)[:, None]
    if noise > 0:
        image = image + rng.normal(0, noise, image.shape).astype(np.float32)
    return image, masks


def _sample_objects(rng: np.random.Generator, n: int, banned: set[tuple[str, str]]) -> list[dict]:
    shapes = rng.choice(len(SHAPES), size=n, replace=False)
    positions = rng.choice(9, size=n, replace=False)
    objects = []
    for s, p in zip(shapes, positions):
        shape = SHAPES[s]
        colour = str(rng.choice([c for c in COLOURS if (c, shape) not in banned]))
        size = SIZES[rng.integers(2)]
        room = int((10 - 1) / 2 - HALF_EXTENT[size])  # how far the shape may move inside its cell
        offset = tuple(int(v) for v in rng.integers(-room, room + 1, size=2))
        objects.append({"shape": shape, "colour": colour, "size": size, "position": int(p), "offset": offset})
    return objects


def _caption(objects: list[dict]) -> tuple[str, list[int]]:
    words, refers = [], []
    for i, obj in enumerate(objects):
        if i > 0:
            words.append("and")
            refers.append(-1)
        phrase = ["a", obj["size"], obj["colour"], obj["shape"], "at", "the", *POSITIONS[obj["position"]].split()]
        words += phrase
        refers += [-1, i, i, i, -1, -1] + [i] * (len(phrase) - 6)
    return " ".join(words), refers


def _question(objects: list[dict], rng: np.random.Generator, banned: set, types: list[str]):
    kind = types[rng.integers(len(types))]
    target = int(rng.integers(len(objects)))
    obj = objects[target]
    if kind == "colour":
        return kind, f"what colour is the {obj['shape']} ?", [-1, -1, -1, -1, target, -1], obj["colour"]
    if kind == "size":
        return kind, f"what size is the {obj['shape']} ?", [-1, -1, -1, -1, target, -1], obj["size"]
    if kind == "position":
        return kind, f"where is the {obj['shape']} ?", [-1, -1, -1, target, -1], POSITIONS[obj["position"]]
    present = {(o["colour"], o["shape"]) for o in objects}
    if rng.random() < 0.5:
        colour, shape = obj["colour"], obj["shape"]
        refers = [-1, -1, -1, target, target, -1]
    else:
        absent = [(c, s) for c in COLOURS for s in SHAPES if (c, s) not in present and (c, s) not in banned]
        colour, shape = absent[rng.integers(len(absent))]
        refers = [-1] * 6
    return kind, f"is there a {colour} {shape} ?", refers, "yes" if (colour, shape) in present else "no"


def _check_holdout(holdout) -> set[tuple[str, str]]:
    pairs = set()
    for pair in holdout:
        if (not isinstance(pair, (tuple, list)) or len(pair) != 2 or pair[0] not in COLOURS
                or pair[1] not in SHAPES):
            raise ValueError(
                f"holdout: expected (colour, shape) pairs with colour in {COLOURS} and shape in {SHAPES}, got {pair!r}"
            )
        pairs.add((pair[0], pair[1]))
    for shape in SHAPES:
        if all((c, shape) in pairs for c in COLOURS):
            raise ValueError(f"holdout: holds out every colour of {shape!r}; leave at least one for training")
    return pairs


def load_shapes(
    n_train: int = 2000,
    n_validation: int = 500,
    n_test: int = 500,
    max_objects: int = MAX_OBJECTS,
    holdout=(),
    question_types=tuple(QUESTION_TYPES),
    noise: float = 0.0,
    seed: int = 0,
    source=None,
):
    """Generate Shapes & captions as a ``datasets.DatasetDict`` (train / validation / test).

    Parameters
    ----------
    n_train, n_validation, n_test : int
        Scenes per split.
    max_objects : int
        Each scene has 1 to ``max_objects`` (at most 3) objects, uniformly.
    holdout : iterable of (colour, shape)
        Combinations never drawn in the training split (neither in scenes nor in questions);
        validation and test scenes may contain them.
    question_types : subset of ("colour", "size", "position", "exists")
        Kinds of question to draw, uniformly.
    noise : float
        Standard deviation of Gaussian pixel noise (0: masks match the pixels exactly).
    seed : int
    source : datasets.Dataset or DatasetDict, optional
        Your own scenes with the columns below; they are checked and returned formatted.

    Returns
    -------
    datasets.DatasetDict formatted for torch, one row per scene (K = 3 object slots,
    L_c = 26, L_q = 6):

    - ``image`` float32 (3, 32, 32) RGB in [0, 1]; ``masks`` bool (K, 32, 32), empty for unused slots
    - ``n_objects`` int; ``object_shape``, ``object_colour``, ``object_size``, ``object_position``
      int64 (K,): indices into :data:`SHAPES`, :data:`COLOURS`, :data:`SIZES`, :data:`POSITIONS`,
      -1 for unused slots
    - ``caption`` str, ``caption_ids`` int64 (L_c,) padded with 0, ``caption_object`` int64 (L_c,):
      the object each token names (its size, colour, shape or position words), -1 otherwise
    - ``question`` str, ``question_ids`` int64 (L_q,), ``question_object`` int64 (L_q,),
      ``question_type`` str, ``answer`` str, ``answer_id`` ``ClassLabel`` over :data:`ANSWERS`
    """
    if source is not None:
        from .schema import check_columns
        from .util import dataset_dict

        ds = dataset_dict(source, "source", "load_shapes", (0.6, 0.2, 0.2), seed)
        return type(ds)({k: check_columns(v, COLUMNS, f"source['{k}']", "load_shapes") for k, v in ds.items()})
    for name, n in (("n_train", n_train), ("n_validation", n_validation), ("n_test", n_test)):
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"{name}: expected an integer >= 1, got {n!r}")
    if not isinstance(max_objects, (int, np.integer)) or not 1 <= max_objects <= MAX_OBJECTS:
        raise ValueError(f"max_objects: expected an integer from 1 to {MAX_OBJECTS}, got {max_objects!r}")
    types = list(question_types)
    if not types or any(t not in QUESTION_TYPES for t in types):
        raise ValueError(f"question_types: expected a non-empty subset of {QUESTION_TYPES}, got {question_types!r}")
    if not isinstance(noise, (int, float)) or not np.isfinite(noise) or noise < 0:
        raise ValueError(f"noise: expected a finite number >= 0, got {noise!r}")
    banned_in_train = _check_holdout(holdout)

    rng = np.random.default_rng(seed)
    parts = {}
    for split, n in zip(SPLITS, (n_train, n_validation, n_test)):
        banned = banned_in_train if split == "train" else set()
        cols: dict[str, list] = {k: [] for k in COLUMN_NAMES}
        for _ in range(n):
            objects = _sample_objects(rng, int(rng.integers(1, max_objects + 1)), banned)
            image, masks = render(objects, noise, rng)
            caption, caption_refers = _caption(objects)
            kind, question, question_refers, answer = _question(objects, rng, banned, types)
            slots = np.zeros((MAX_OBJECTS, IMAGE_SIZE, IMAGE_SIZE), bool)
            slots[: len(objects)] = masks
            pad = [-1] * (MAX_OBJECTS - len(objects))
            cols["image"].append(image)
            cols["masks"].append(slots)
            cols["n_objects"].append(len(objects))
            cols["object_shape"].append([SHAPES.index(o["shape"]) for o in objects] + pad)
            cols["object_colour"].append([COLOURS.index(o["colour"]) for o in objects] + pad)
            cols["object_size"].append([SIZES.index(o["size"]) for o in objects] + pad)
            cols["object_position"].append([o["position"] for o in objects] + pad)
            cols["caption"].append(caption)
            cols["caption_ids"].append(VOCAB.encode(caption, CAPTION_LENGTH))
            cols["caption_object"].append(caption_refers + [-1] * (CAPTION_LENGTH - len(caption_refers)))
            cols["question"].append(question)
            cols["question_ids"].append(VOCAB.encode(question, QUESTION_LENGTH))
            cols["question_object"].append(question_refers + [-1] * (QUESTION_LENGTH - len(question_refers)))
            cols["question_type"].append(kind)
            cols["answer"].append(answer)
            cols["answer_id"].append(ANSWERS.index(answer))
        strings = {"caption", "question", "question_type", "answer"}
        parts[split] = {k: v if k in strings else np.asarray(v, np.float32 if k == "image" else None)
                        for k, v in cols.items()}
        for k in parts[split]:
            if k not in strings and parts[split][k].dtype.kind == "i":
                parts[split][k] = parts[split][k].astype(np.int64)
    return table(parts, class_labels={"answer_id": ANSWERS})


COLUMN_NAMES = [
    "image", "masks", "n_objects", "object_shape", "object_colour", "object_size", "object_position",
    "caption", "caption_ids", "caption_object", "question", "question_ids", "question_object",
    "question_type", "answer", "answer_id",
]


def _columns():
    from .schema import Column

    return [
        Column("image", (3, IMAGE_SIZE, IMAGE_SIZE), "float"),
        Column("caption_ids", (CAPTION_LENGTH,), "int"),
        Column("question_ids", (QUESTION_LENGTH,), "int"),
        Column("answer_id", (), "int"),
        Column("masks", (MAX_OBJECTS, IMAGE_SIZE, IMAGE_SIZE), "bool", required=False),
        Column("caption_object", (CAPTION_LENGTH,), "int", required=False),
        Column("question_object", (QUESTION_LENGTH,), "int", required=False),
    ]


COLUMNS = _columns()
