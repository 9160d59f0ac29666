"""AV-Digits: handwritten digit images paired with spoken digits, offline.

Images are scikit-learn's bundled 8x8 handwritten digits (1,797 images, UCI "Optical Recognition
of Handwritten Digits"). Audio clips are espeak-ng speech made by ``scripts/make_spoken_digits.py``
(96 voices, each saying "zero" to "nine"), shipped in ``spoken_digits.npz``. Clips are
endpointed, like the Free Spoken Digit Dataset: each word starts at the beginning of its 0.8 s
window, which is padded with silence. Each image is paired
with a clip of the same digit from a voice of the same split; train, validation and test use
disjoint images and disjoint voices, so a model cannot succeed by remembering a speaker.

Both modalities can be corrupted: images with Gaussian pixel noise and a square occluder, audio
with white noise at a chosen signal-to-noise ratio. The defaults make each modality alone clearly
imperfect and the pair clearly better (numbers in the docstring of :func:`load_av_digits`).
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from ..device import draw_device
from .audio import (
    CLIP_SAMPLES,
    N_FRAMES,
    N_MELS,
    add_noise_at_snr,
    log_mel_spectrogram,
    mu_law_decode,
    voiced_power,
)
from .schema import Column, check_columns
from .util import SPLITS, check_fraction, check_nonnegative, dataset_dict, split_dataset, table

DIGIT_NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]

DEFAULT_IMAGE_NOISE = 0.3
DEFAULT_OCCLUSION = 3
DEFAULT_AUDIO_SNR_DB = 0.0

COLUMNS = [
    Column("image", (1, 8, 8), "float"),
    Column("audio", (1, N_MELS, N_FRAMES), "float"),
    Column("label", (), "int"),
    Column("waveform", (CLIP_SAMPLES,), "float", required=False),
]
_DATA_FILE = Path(__file__).with_name("spoken_digits.npz")


@lru_cache(maxsize=1)
def spoken_digits() -> dict[str, np.ndarray]:
    """The shipped clips: ``waveforms`` (N, 6400) float32 at 8 kHz (zero-padded), ``labels`` (N,),
    ``voice`` (N,) voice index and ``voice_names`` (V,)."""
    raw = np.load(_DATA_FILE)
    offsets = raw["offsets"]
    codes = torch.from_numpy(raw["codes"])
    waves = torch.zeros(len(offsets) - 1, CLIP_SAMPLES)
    for i, (a, b) in enumerate(zip(offsets[:-1], offsets[1:])):
        waves[i, : b - a] = mu_law_decode(codes[a:b])
    return {
        "waveforms": waves.numpy(),
        "labels": raw["labels"],
        "voice": raw["voice"],
        "voice_names": raw["voice_names"],
    }


def corrupt_images(
    images: torch.Tensor, noise=0.0, occlusion: int = 0, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Erase a random ``occlusion`` x ``occlusion`` square and add Gaussian pixel noise of std ``noise``.

    Pixel values of clean digits are in [0, 1]. ``noise`` is a number or one std per image (B,).
    Shape: (B, 1, 8, 8) -> (B, 1, 8, 8), on the images' device (with ``generator``: drawn on the
    generator's device and moved).
    """
    if images.ndim != 4 or images.shape[1:] != (1, 8, 8):
        raise ValueError(f"images: expected shape (B, 1, 8, 8), got {tuple(images.shape)}")
    if isinstance(noise, torch.Tensor):
        if noise.shape not in ((), (len(images),)) or not torch.isfinite(noise).all() or (noise < 0).any():
            raise ValueError(f"noise: expected finite stds >= 0, one number or shape ({len(images)},), "
                             f"got {tuple(noise.shape)}")
    else:
        check_nonnegative("noise", noise)
    if not 0 <= occlusion <= 8:
        raise ValueError(f"occlusion: expected a square side between 0 and 8 pixels, got {occlusion}")
    out = images.clone()
    draw_on = draw_device(generator, out.device)
    if occlusion > 0:
        top, left = torch.randint(0, 9 - occlusion, (2, len(out)), generator=generator, device=draw_on).to(out.device)
        rows = torch.arange(8, device=out.device)
        in_rows = (rows >= top[:, None]) & (rows < top[:, None] + occlusion)  # (B, 8)
        in_cols = (rows >= left[:, None]) & (rows < left[:, None] + occlusion)
        out.masked_fill_((in_rows[:, :, None] & in_cols[:, None, :])[:, None], 0.0)
    # Made on the images' device; for a number, without copying it there or reading a value back.
    if isinstance(noise, torch.Tensor):
        std = noise.to(out.device, out.dtype).expand(len(out))
        noisy = bool((std > 0).any())
    else:
        std, noisy = torch.full((len(out),), float(noise), dtype=out.dtype, device=out.device), noise > 0
    if noisy:
        out = out + std.view(-1, 1, 1, 1) * torch.randn(out.shape, generator=generator, device=draw_on).to(out.device)
    return out


def audio_features(
    waveforms: torch.Tensor, snr_db=np.inf, generator: torch.Generator | None = None,
    power: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Add noise at ``snr_db`` (a number or one per clip, (B,)) and compute log-mel spectrograms.

    ``power``: the clean clips' :func:`~mmcourse.data.audio.voiced_power` (B,), when already known.
    Shape: (B, 6400) -> noisy waveforms (B, 6400) and spectrograms (B, 1, 32, 40).
    """
    noisy = add_noise_at_snr(waveforms, snr_db, generator, power)
    # In chunks, to keep the STFT's intermediate tensors (and the kernel's peak memory) small.
    return noisy, torch.cat([log_mel_spectrogram(chunk) for chunk in noisy.split(256)])


def corrupt_av(clean: dict, image_noise=DEFAULT_IMAGE_NOISE, audio_snr_db=DEFAULT_AUDIO_SNR_DB,
               occlusion: int = DEFAULT_OCCLUSION, generator: torch.Generator | None = None,
               power: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Corrupt clean AV-Digits rows: pixel noise and an occluder on the images, noise at an SNR on the audio.

    ``image_noise`` and ``audio_snr_db`` are numbers or one value per row (N,); the defaults are
    AV-Digits' default corruption, the one :func:`load_av_digits` applies. ``power`` (N,): the clips'
    :func:`~mmcourse.data.audio.voiced_power`, to measure it once for several corrupted copies.
    Shape: ``clean`` {"image": (N, 1, 8, 8), "waveform": (N, 6400), "label": (N,)} ->
    {"image" (N, 1, 8, 8), "audio" (N, 1, 32, 40), "label" (N,)}.
    """
    image = corrupt_images(clean["image"], image_noise, occlusion, generator)
    _, audio = audio_features(clean["waveform"], audio_snr_db, generator, power)
    return {"image": image, "audio": audio, "label": clean["label"]}



def corrupt_av_copies(clean: dict, copies: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """``copies`` independently corrupted copies of clean rows at the default corruption (:func:`corrupt_av`),
    one copy after the other; each clip's power is measured once for all of them.

    Shape: ``clean`` as for :func:`corrupt_av` (N rows) -> {"image", "audio", "label"} with copies * N rows.
    """
    power = voiced_power(clean["waveform"])
    parts = [corrupt_av(clean, generator=generator, power=power) for _ in range(copies)]
    return {k: torch.cat([part[k] for part in parts]) for k in parts[0]}

def load_av_digits(
    image_noise: float = DEFAULT_IMAGE_NOISE,
    occlusion: int = DEFAULT_OCCLUSION,
    audio_snr_db: float = DEFAULT_AUDIO_SNR_DB,
    seed: int = 0,
    source=None,
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
):
    """Load AV-Digits as a ``datasets.DatasetDict`` with ``train``, ``validation`` and ``test``.

    Parameters
    ----------
    image_noise : float
        Standard deviation of Gaussian noise added to the pixels (clean pixels lie in [0, 1]).
    occlusion : int
        Side, in pixels, of a square erased at a random place in each image (0 to 8).
    audio_snr_db : float
        Signal-to-noise ratio of white noise added to each clip, in dB; ``math.inf`` for clean.
    seed : int
        Fixes the split of the images, the voices of each split, the pairing and the noise.
    source : datasets.Dataset or datasets.DatasetDict, optional
        Your own data with the columns below instead of the built-in set. A ``Dataset`` is
        split by ``fractions``; a ``DatasetDict`` must have the three splits. Noise arguments
        are not applied to it.
    fractions : (train, validation, test)
        Shares of the 1,797 images in each split.

    Returns
    -------
    datasets.DatasetDict, formatted for torch, one row per (image, clip) pair:

    - ``image``: float32 (1, 8, 8), pixels in [0, 1] before noise
    - ``audio``: float32 (1, 32, 40), log-mel spectrogram (32 mel bands x 40 frames of 20 ms),
      standardised per clip
    - ``waveform``: float32 (6400,), the noisy 0.8 s clip at 8 kHz (play it with
      ``IPython.display.Audio(w, rate=8000)``)
    - ``label``: ``ClassLabel`` with names "zero" ... "nine"
    - ``voice``: string naming the espeak-ng voice (accent+variant, speed, pitch)

    The two most recent results are kept: the same arguments return the same object again at once
    (lesson 07 asks for the same data once per method). Change its format with ``with_format``,
    which makes a copy, rather than with the in-place ``set_format``.

    With the default noise, small encoders from :mod:`mmcourse.encoders` trained for 15 epochs
    (about a second) reach test accuracy of about 0.70 on images alone, 0.80 on audio alone and
    0.90 on both concatenated (seeds 0 to 2; clean data gives about 0.96, 0.94 and 0.99).
    ``tests/test_av_digits.py::test_default_noise_makes_fusion_worthwhile`` checks this.

    Examples
    --------
    >>> ds = load_av_digits()
    >>> ds["train"][0]["image"].shape
    torch.Size([1, 8, 8])
    """
    if source is not None:
        ds = dataset_dict(source, "source", "load_av_digits", fractions, seed)
        return type(ds)({k: check_columns(v, COLUMNS, f"source['{k}']", "load_av_digits") for k, v in ds.items()})
    check_nonnegative("image_noise", image_noise)
    if not isinstance(occlusion, (int, np.integer)) or not 0 <= occlusion <= 8:
        raise ValueError(f"occlusion: expected an integer square side in 0..8 pixels, got {occlusion!r}")
    if not isinstance(audio_snr_db, (int, float)) or np.isnan(audio_snr_db):
        raise ValueError(f"audio_snr_db: expected a number of decibels (math.inf for clean), got {audio_snr_db!r}")
    check_fraction("fractions", fractions)
    return _build(float(image_noise), int(occlusion), float(audio_snr_db), int(seed), tuple(fractions))


@lru_cache(maxsize=1)
def handwritten_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 handwritten digits: ``pixels`` (N, 64) in 0..16 and ``target`` (N,) int64.

    The same numbers as ``sklearn.datasets.load_digits()`` (tests/test_av_digits.py compares them),
    read straight from the file scikit-learn ships: importing scikit-learn itself takes about two
    seconds, most of a lesson's data loading, and only this file is needed.
    """
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the handwritten digits ship with scikit-learn: pip install scikit-learn")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "digits.csv.gz"
    table = np.loadtxt(path, delimiter=",", dtype=np.float64)
    return table[:, :-1], table[:, -1].astype(np.int64)


def _clean_splits(fractions: tuple, g: torch.Generator):
    """Pair images and clips split by split, drawing from ``g``: yields (split name, clean images
    (n, 1, 8, 8), clean waveforms (n, 6400), labels (n,), voice of each clip (n,)).

    A generator, so that a caller that corrupts each split before asking for the next draws from
    ``g`` in the same order as always.
    """
    pixels, target = handwritten_digits()
    images = torch.from_numpy(pixels).float().div(16.0).reshape(-1, 1, 8, 8)  # (N, 1, 8, 8)
    labels = torch.from_numpy(target)
    clips = spoken_digits()
    voice_of_clip = torch.from_numpy(clips["voice"])
    clip_labels = torch.from_numpy(clips["labels"])
    waves = torch.from_numpy(clips["waveforms"])

    image_split = split_dataset(len(images), fractions, g)
    voice_split = split_dataset(len(clips["voice_names"]), fractions, g)
    for name, image_idx, voices in zip(SPLITS, image_split, voice_split):
        y = labels[image_idx]
        # For each image, a clip of the same digit from one of this split's voices.
        voice = voices[torch.randint(0, len(voices), (len(y),), generator=g)]
        clip_idx = torch.tensor(
            [int(torch.nonzero((voice_of_clip == v) & (clip_labels == d))[0]) for v, d in zip(voice, y)],
            dtype=torch.long,
        )
        yield name, images[image_idx], waves[clip_idx], y, voice


def clean_av_tensors(seed: int = 0, fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)) -> dict[str, dict]:
    """The clean AV-Digits pairs of each split as tensors, without building ``datasets`` tables.

    The same pairs and values as the ``image``, ``waveform`` and ``label`` columns of
    ``load_av_digits(image_noise=0, occlusion=0, audio_snr_db=math.inf, seed=seed)``, for
    experiments that corrupt the pairs themselves (lesson 01's sensor failures): it skips the
    spectrograms of the clean clips and the Arrow tables, about half a second.

    Shape: {"train", "validation", "test"} -> {"image": (n, 1, 8, 8), "waveform": (n, 6400), "label": (n,)}.
    """
    check_fraction("fractions", fractions)
    g = torch.Generator().manual_seed(int(seed))
    return {name: {"image": image, "waveform": waveform, "label": label}
            for name, image, waveform, label, _ in _clean_splits(tuple(fractions), g)}


@lru_cache(maxsize=2)  # lessons and the running comparison ask for the same data several times
def _build(image_noise: float, occlusion: int, audio_snr_db: float, seed: int, fractions: tuple):
    """The built-in AV-Digits for checked arguments (see :func:`load_av_digits`), kept for the next call."""
    voice_names = spoken_digits()["voice_names"]
    g = torch.Generator().manual_seed(seed)
    parts = {}
    for name, clean_images, clean_waves, y, voice in _clean_splits(fractions, g):
        image = corrupt_images(clean_images, image_noise, occlusion, g)
        waveform, audio = audio_features(clean_waves, audio_snr_db, g)
        parts[name] = {
            "image": image.numpy(),
            "audio": audio.numpy(),
            "waveform": waveform.numpy(),
            "label": y.numpy(),
            "voice": [str(voice_names[v]) for v in voice],
        }
    return table(parts, class_labels={"label": DIGIT_NAMES})
