"""Offline multimodal data sets, returned as Hugging Face ``datasets`` objects formatted for torch."""

from .audio import SAMPLE_RATE, add_noise_at_snr, log_mel_spectrogram, mel_filterbank, mu_law_decode, voiced_power
from .av_digits import (
    DEFAULT_AUDIO_SNR_DB,
    DEFAULT_IMAGE_NOISE,
    DEFAULT_OCCLUSION,
    DIGIT_NAMES,
    audio_features,
    clean_av_tensors,
    corrupt_av,
    corrupt_av_copies,
    corrupt_images,
    load_av_digits,
    spoken_digits,
)
from .util import as_tensors

__all__ = [
    "DEFAULT_AUDIO_SNR_DB", "DEFAULT_IMAGE_NOISE", "DEFAULT_OCCLUSION", "DIGIT_NAMES", "SAMPLE_RATE",
    "add_noise_at_snr", "as_tensors", "audio_features", "clean_av_tensors", "corrupt_av", "corrupt_av_copies",
    "corrupt_images", "load_av_digits", "log_mel_spectrogram", "mel_filterbank", "mu_law_decode", "spoken_digits",
    "voiced_power",
]

from .shapes import (  # noqa: E402
    ANSWERS,
    BACKGROUND,
    COLOURS,
    POSITIONS,
    QUESTION_TYPES,
    SHAPES,
    SIZES,
    VOCAB,
    Vocab,
    load_shapes,
    render,
)

__all__ += [
    "ANSWERS", "BACKGROUND", "COLOURS", "POSITIONS", "QUESTION_TYPES", "SHAPES", "SIZES", "VOCAB", "Vocab",
    "load_shapes", "render",
]

from .two_views import TwoViews, make_two_views  # noqa: E402

__all__ += ["TwoViews", "make_two_views"]
