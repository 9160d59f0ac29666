"""Audio helpers for AV-Digits: mu-law decoding, additive noise at a given SNR, log-mel spectrograms.

Everything is plain torch so that a learner can read it; no torchaudio needed.
"""

from __future__ import annotations

import math
import numbers

import torch

from ..device import draw_device

SAMPLE_RATE = 8000
CLIP_SAMPLES = 6400  # 0.8 s at 8 kHz
N_FFT, HOP_LENGTH, N_MELS, N_FRAMES = 256, 160, 32, 40


def mu_law_decode(codes: torch.Tensor, mu: int = 255) -> torch.Tensor:
    """Invert 8-bit mu-law companding (ITU-T G.711).

    Shape: ``codes`` (...,) int8 in [-127, 127] -> float32 (...,) in [-1, 1].
    """
    y = codes.float() / 127.0
    return torch.sign(y) * ((1 + mu) ** y.abs() - 1) / mu


def voiced_power(waveform: torch.Tensor) -> torch.Tensor:
    """Mean power of each clip over its non-silent samples (``|x| > 1e-3``).

    Shape: ``waveform`` (B, T) -> (B,).
    """
    if waveform.ndim != 2:
        raise ValueError(f"waveform: expected shape (B, T), got {tuple(waveform.shape)}")
    voiced = waveform.abs() > 1e-3
    return (waveform.pow(2) * voiced).sum(1) / voiced.sum(1).clamp(min=1)


def add_noise_at_snr(
    waveform: torch.Tensor,
    snr_db: float | torch.Tensor,
    generator: torch.Generator | None = None,
    power: torch.Tensor | None = None,
) -> torch.Tensor:
    """Add white Gaussian noise so that signal power / noise power is ``snr_db`` decibels.

    The signal power is measured on the non-silent samples of each clip (:func:`voiced_power`),
    so a short word padded with silence gets the same noise as a long one at the same SNR.
    ``power`` passes that measurement in when it is already known, for example when the same
    clean clips get several noisy copies.

    Shape: ``waveform`` (B, T) -> (B, T). ``snr_db`` is a float or a (B,) tensor;
    ``math.inf`` means no noise. ``power``: (B,), optional. The noise is made on the waveform's device
    (with ``generator``: drawn on the generator's device and moved).
    """
    if waveform.ndim != 2:
        raise ValueError(f"waveform: expected shape (B, T), got {tuple(waveform.shape)}")
    if power is not None and tuple(power.shape) != (waveform.shape[0],):
        raise ValueError(f"power: expected one value per clip, shape ({waveform.shape[0]},), got {tuple(power.shape)}")
    # Made on the waveform's device; for a number, without copying it there or reading a value back.
    if isinstance(snr_db, numbers.Real):
        snr = torch.full((waveform.shape[0],), float(snr_db), dtype=torch.float32, device=waveform.device)
        clean = math.isinf(snr_db)
    else:
        snr = torch.as_tensor(snr_db, dtype=torch.float32, device=waveform.device).expand(waveform.shape[0])
        clean = bool(torch.isinf(snr).all())
    if clean:
        return waveform.clone()
    power = voiced_power(waveform) if power is None else power.to(waveform.device)
    noise_std = torch.sqrt(power / 10 ** (snr / 10))
    noise = torch.randn(waveform.shape, generator=generator, device=draw_device(generator, waveform.device))
    noise = noise.to(waveform.device)
    return waveform + noise_std[:, None] * noise


def mel_filterbank(
    n_freqs: int = N_FFT // 2 + 1, n_mels: int = N_MELS, sample_rate: int = SAMPLE_RATE,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Triangular filters evenly spaced on the mel scale (HTK formula mel = 2595 log10(1 + f / 700)).

    Shape: returns (n_freqs, n_mels), so that ``power_spectrum.T @ fb`` gives mel energies; made on
    ``device`` (default the CPU).
    """
    def to_mel(f: float) -> float:
        return 2595 * math.log10(1 + f / 700)

    mels = torch.linspace(0.0, to_mel(sample_rate / 2), n_mels + 2, device=device)
    hz = 700 * (10 ** (mels / 2595) - 1)
    freqs = torch.linspace(0, sample_rate / 2, n_freqs, device=device)
    lower, centre, upper = hz[:-2], hz[1:-1], hz[2:]
    rising = (freqs[:, None] - lower) / (centre - lower)
    falling = (upper - freqs[:, None]) / (upper - centre)
    return torch.clamp(torch.minimum(rising, falling), min=0.0)


def log_mel_spectrogram(waveform: torch.Tensor, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """Log-mel spectrogram, standardised per clip, with a fixed number of frames.

    STFT with a 256-sample Hann window (32 ms) and a 160-sample hop (20 ms), power spectrum,
    32 mel bands, ``log(mel + 1e-6)``, then zero mean and unit variance per clip (so that a
    louder recording or a different noise floor does not shift the whole picture).

    Shape: ``waveform`` (B, T) with T = 6400 -> (B, 1, 32, 40), on the waveform's device.
    """
    if waveform.ndim != 2:
        raise ValueError(f"waveform: expected shape (B, T), got {tuple(waveform.shape)}")
    spec = torch.stft(
        waveform, N_FFT, HOP_LENGTH, window=torch.hann_window(N_FFT, device=waveform.device), return_complex=True
    ).abs().pow(2)  # (B, n_freqs, frames)
    mel = torch.einsum("bft,fm->bmt", spec, mel_filterbank(spec.shape[1], N_MELS, sample_rate, waveform.device))
    logmel = torch.log(mel + 1e-6)[:, :, :N_FRAMES]
    mean = logmel.mean(dim=(1, 2), keepdim=True)
    std = logmel.std(dim=(1, 2), keepdim=True).clamp(min=1e-5)
    return ((logmel - mean) / std).unsqueeze(1)
