"""Offline multimodal data sets, returned as Hugging Face ``datasets`` objects formatted for torch."""

from .audio import SAMPLE_RATE, add_noise_at_snr, log_mel_spectrogram, mel_filterbank, mu_law_decode
from .av_digits import DIGIT_NAMES, audio_features, corrupt_images, load_av_digits, spoken_digits

__all__ = [
    "DIGIT_NAMES", "SAMPLE_RATE", "add_noise_at_snr", "audio_features", "corrupt_images",
    "load_av_digits", "log_mel_spectrogram", "mel_filterbank", "mu_law_decode", "spoken_digits",
]

from .shapes import (  # noqa: E402
    ANSWERS,
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
    "ANSWERS", "COLOURS", "POSITIONS", "QUESTION_TYPES", "SHAPES", "SIZES", "VOCAB", "Vocab",
    "load_shapes", "render",
]

from .two_views import TwoViews, make_two_views  # noqa: E402

__all__ += ["TwoViews", "make_two_views"]
