"""Synthesize the spoken digits of AV-Digits with espeak-ng (run once, output shipped).

Each *voice* is a combination of an accent (an espeak-ng language voice reading
English words), a voice variant (timbre), a speaking rate and a pitch. Every voice
says "zero" to "nine". Clips are resampled to 8 kHz, trimmed of silence, peak
normalised and stored 8-bit mu-law encoded in one compressed ``.npz`` file::

    python scripts/make_spoken_digits.py            # writes mmcourse/data/spoken_digits.npz

Requires the ``espeak-ng`` program (Debian/Ubuntu: ``apt-get install espeak-ng``)
and SciPy. The output is deterministic for a given espeak-ng version and seed.
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
# English accents first, then other languages reading English words (foreign accents).
ACCENTS = [
    "en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd",
    "en-029", "en-us-nyc", "de", "fr", "es", "it", "nl", "pl", "hi", "sv", "pt", "fi",
]
VARIANTS = [
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "Annie", "Andy",
    "antonio", "belinda", "david", "edward", "grandma", "grandpa", "linda", "Mike", "paul",
    "robert", "steph", "travis", "victor", "zac", "croak", "klatt", "klatt2", "klatt3",
]
IN_RATE, OUT_RATE = 22050, 8000
MAX_SECONDS = 0.8


def synthesize(word: str, voice: str, speed: int, pitch: int) -> np.ndarray:
    """Return espeak-ng's rendering of ``word`` as float32 samples at 22.05 kHz."""
    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", word],
        check=True, capture_output=True,
    ).stdout
    return np.frombuffer(wav[44:], dtype="<i2").astype(np.float32) / 32768.0


def trim(x: np.ndarray, threshold: float = 0.02) -> np.ndarray:
    """Cut leading and trailing samples whose magnitude stays below ``threshold`` of the peak."""
    loud = np.flatnonzero(np.abs(x) > threshold * np.abs(x).max())
    return x[loud[0] : loud[-1] + 1]


def mu_law_encode(x: np.ndarray, mu: int = 255) -> np.ndarray:
    """Map samples in [-1, 1] to int8 codes with mu-law companding (ITU-T G.711)."""
    y = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    return np.clip(np.round(y * 127), -127, 127).astype(np.int8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voices", type=int, default=96)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).resolve().parents[1] / "mmcourse/data/spoken_digits.npz")
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    combos = [(a, v) for a in ACCENTS for v in VARIANTS]
    chosen = rng.choice(len(combos), size=args.voices, replace=False)
    clips, offsets, labels, voice_of_clip, voices = [], [0], [], [], []
    for i, c in enumerate(chosen):
        accent, variant = combos[c]
        speed, pitch = int(rng.integers(110, 200)), int(rng.integers(20, 80))
        voices.append(f"{accent}+{variant} s{speed} p{pitch}")
        for label, word in enumerate(WORDS):
            x = synthesize(word, f"{accent}+{variant}", speed, pitch)
            x = resample_poly(x, OUT_RATE // 50, IN_RATE // 50)  # 22050 Hz -> 8000 Hz
            x = trim(x)[: int(MAX_SECONDS * OUT_RATE)]
            x = 0.95 * x / np.abs(x).max()
            clips.append(mu_law_encode(x))
            offsets.append(offsets[-1] + len(x))
            labels.append(label)
            voice_of_clip.append(i)
    np.savez_compressed(
        args.out,
        codes=np.concatenate(clips),
        offsets=np.asarray(offsets, dtype=np.int64),
        labels=np.asarray(labels, dtype=np.int64),
        voice=np.asarray(voice_of_clip, dtype=np.int64),
        voice_names=np.asarray(voices),
        sample_rate=np.int64(OUT_RATE),
    )
    lengths = np.diff(offsets) / OUT_RATE
    print(f"{len(clips)} clips from {len(voices)} voices, {lengths.mean():.2f} s on average "
          f"({lengths.min():.2f}-{lengths.max():.2f} s), {args.out.stat().st_size / 1e6:.2f} MB -> {args.out}")


if __name__ == "__main__":
    main()
