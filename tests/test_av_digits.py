"""AV-Digits: schema, determinism, disjoint voices, noise knobs, learner data, and that fusion pays."""

import math

import fake_accelerator as fake
import pytest
import torch
from datasets import Dataset, DatasetDict
from torch import nn

from mmcourse import evaluate, fit
from mmcourse.data import (
    DIGIT_NAMES,
    as_tensors,
    clean_av_tensors,
    corrupt_av,
    corrupt_av_copies,
    corrupt_images,
    load_av_digits,
    spoken_digits,
)
from mmcourse.data.audio import add_noise_at_snr, log_mel_spectrogram, mel_filterbank, mu_law_decode, voiced_power
from mmcourse.encoders import AudioEncoder, ImageEncoder


@pytest.fixture(scope="module")
def av():
    return load_av_digits(seed=0)


def test_splits_columns_shapes_and_types(av):
    assert isinstance(av, DatasetDict) and list(av) == ["train", "validation", "test"]
    assert sum(len(s) for s in av.values()) == 1797  # every sklearn digit image used once
    assert av["train"].features["label"].names == DIGIT_NAMES
    batch = av["train"][:5]
    assert batch["image"].shape == (5, 1, 8, 8) and batch["image"].dtype == torch.float32
    assert batch["audio"].shape == (5, 1, 32, 40) and batch["audio"].dtype == torch.float32
    assert batch["waveform"].shape == (5, 6400) and batch["waveform"].dtype == torch.float32
    assert batch["label"].dtype == torch.int64
    assert isinstance(batch["voice"][0], str)


def test_same_seed_same_data_other_seed_other_data(av):
    again = load_av_digits(seed=0)
    other = load_av_digits(seed=1)
    for column in ("image", "audio", "label"):
        assert torch.equal(av["test"][column][:], again["test"][column][:])
    assert not torch.equal(av["test"]["image"][:], other["test"]["image"][:])


@pytest.mark.parametrize("seed", [0, 3])
def test_clean_tensors_are_the_clean_loaders_rows(seed):
    tables = load_av_digits(image_noise=0.0, occlusion=0, audio_snr_db=math.inf, seed=seed)
    tensors = clean_av_tensors(seed)
    assert list(tensors) == ["train", "validation", "test"]
    for split, columns in tensors.items():
        expected = as_tensors(tables[split], ["image", "waveform", "label"])
        assert list(columns) == list(expected)
        for name, values in columns.items():
            assert values.dtype == expected[name].dtype and torch.equal(values, expected[name]), (split, name)


def test_corrupted_copies_are_corrupt_av_called_once_per_copy():
    clean = {k: v[:20] for k, v in clean_av_tensors(0)["test"].items()}
    copied = corrupt_av_copies(clean, 3, torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)
    one_by_one = [corrupt_av(clean, generator=g) for _ in range(3)]
    for name in ("image", "audio", "label"):
        assert torch.equal(copied[name], torch.cat([part[name] for part in one_by_one]))
    assert not torch.equal(copied["audio"][:20], copied["audio"][20:40])  # each copy gets its own noise


def test_voices_are_disjoint_across_splits_and_audio_matches_label(av):
    voices = {s: set(av[s]["voice"]) for s in av}
    assert not voices["train"] & voices["test"]
    assert not voices["train"] & voices["validation"]
    assert not voices["validation"] & voices["test"]
    assert len(voices["train"]) >= 50 and len(voices["test"]) >= 15
    # The clean waveform of each row is the shipped clip of that voice and that digit.
    clean = load_av_digits(image_noise=0.0, occlusion=0, audio_snr_db=math.inf, seed=0)["test"]
    clips = spoken_digits()
    names = list(clips["voice_names"])
    for i in range(0, len(clean), 37):
        row = clean[i]
        match = (clips["voice"] == names.index(row["voice"])) & (clips["labels"] == int(row["label"]))
        assert torch.allclose(row["waveform"], torch.from_numpy(clips["waveforms"][match][0]))


def test_images_are_the_sklearn_digits_with_their_labels():
    from sklearn.datasets import load_digits

    digits = load_digits()
    clean = load_av_digits(image_noise=0.0, occlusion=0, audio_snr_db=math.inf, seed=0)["train"][:50]
    reference = {tuple(img.flatten().tolist()): int(t) for img, t in zip(digits.images / 16.0, digits.target)}
    for image, label in zip(clean["image"], clean["label"]):
        assert reference[tuple(image.flatten().double().tolist())] == int(label)


def test_the_digits_file_reads_as_scikit_learn_loads_it():
    from sklearn.datasets import load_digits

    from mmcourse.data.av_digits import handwritten_digits

    digits = load_digits()
    pixels, target = handwritten_digits()
    assert pixels.shape == (1797, 64) and target.dtype.kind == "i"
    assert (pixels == digits.data).all() and (target == digits.target).all()


def test_shipped_data_is_small_and_decodes():
    from pathlib import Path

    import mmcourse.data

    total = sum(p.stat().st_size for p in Path(mmcourse.data.__file__).parent.glob("*.npz"))
    assert total <= 5_000_000
    clips = spoken_digits()
    assert clips["waveforms"].shape == (960, 6400) and len(clips["voice_names"]) == 96
    assert abs(clips["waveforms"]).max() <= 1.0
    assert sorted(set(clips["labels"].tolist())) == list(range(10))


def test_mu_law_decode_inverts_the_encoder():
    x = torch.linspace(-1, 1, 201)
    mu = 255
    codes = torch.round(torch.sign(x) * torch.log1p(mu * x.abs()) / math.log1p(mu) * 127).to(torch.int8)
    assert (mu_law_decode(codes) - x).abs().max() < 0.02


def test_noise_is_added_at_the_requested_snr():
    g = torch.Generator().manual_seed(0)
    wave = torch.zeros(4, 6400)
    wave[:, :3000] = torch.sin(torch.arange(3000) * 0.3) * torch.tensor([[0.1], [0.5], [1.0], [0.9]])
    for snr in (-6.0, 0.0, 10.0):
        noisy = add_noise_at_snr(wave, snr, g)
        signal_power = wave[:, :3000].pow(2).mean(1)
        noise_power = (noisy - wave).pow(2).mean(1)
        measured = 10 * torch.log10(signal_power / noise_power)
        assert torch.allclose(measured, torch.full((4,), snr), atol=0.3)
    assert torch.equal(add_noise_at_snr(wave, math.inf), wave)


def test_voiced_power_measures_the_non_silent_samples_and_can_be_passed_in():
    wave = torch.zeros(3, 6400)
    wave[0, :1000] = 0.5  # power 0.25 over the voiced samples, whatever the padding
    wave[1, :4000] = -0.2
    assert torch.allclose(voiced_power(wave), torch.tensor([0.25, 0.04, 0.0]))
    # Several noisy copies of the same clips: measuring the power once gives the very same noise.
    clips = torch.randn(5, 6400, generator=torch.Generator().manual_seed(1))
    power = voiced_power(clips)
    for snr in (-20.0, 0.0, torch.tensor([-5.0, 0.0, 5.0, 10.0, 20.0])):
        plain = add_noise_at_snr(clips, snr, torch.Generator().manual_seed(2))
        known = add_noise_at_snr(clips, snr, torch.Generator().manual_seed(2), power)
        assert torch.equal(plain, known)
    with pytest.raises(ValueError, match=r"power: expected one value per clip, shape \(5,\)"):
        add_noise_at_snr(clips, 0.0, power=power[:3])


def test_log_mel_is_standardised_and_sees_the_right_band():
    t = torch.arange(6400) / 8000
    low, high = torch.sin(2 * math.pi * 300 * t), torch.sin(2 * math.pi * 3000 * t)
    spec = log_mel_spectrogram(torch.stack([low, high]))
    assert spec.shape == (2, 1, 32, 40)
    assert torch.allclose(spec.mean((1, 2, 3)), torch.zeros(2), atol=1e-5)
    peak_band = spec[:, 0].mean(2).argmax(1)
    assert peak_band[0] < 10 < 20 < peak_band[1]
    fb = mel_filterbank()
    assert fb.shape == (129, 32) and (fb >= 0).all() and (fb.max(0).values > 0.5).all()


def test_image_corruption_occludes_and_adds_noise():
    images = torch.ones(6, 1, 8, 8)
    occluded = corrupt_images(images, noise=0.0, occlusion=3, generator=torch.Generator().manual_seed(0))
    assert ((occluded == 0).sum((1, 2, 3)) == 9).all()
    noisy = corrupt_images(images, noise=0.5, occlusion=0, generator=torch.Generator().manual_seed(0))
    assert abs((noisy - images).std().item() - 0.5) < 0.05


FAKE = fake.unsupported()


@pytest.mark.skipif(FAKE is not None, reason=f"fake accelerator: {FAKE}")
def test_corruption_and_features_of_device_tensors_are_the_cpus():
    """Issue 31: the occluder, the noise and the STFT's window were made on the CPU, which fails with device
    inputs. They are made on the input's device; a CPU generator draws on the CPU and the draw is moved (the
    CPU's corruption, on the device). The fake device has the CPU's numbers, so the results are equal."""
    g = torch.Generator().manual_seed(0)
    wave = torch.zeros(6, 6400)
    wave[:, :4000] = 0.3 * torch.randn(6, 4000, generator=g)
    clean = {"image": torch.rand(6, 1, 8, 8, generator=g), "waveform": wave, "label": torch.arange(6)}
    device = fake.device()
    on_device = {k: v.to(device) for k, v in clean.items()}
    per_row = (torch.rand(6, generator=g), torch.tensor([-5.0, 0.0, 5.0, 10.0, 20.0, math.inf]))
    for noise, snr in ((0.3, 0.0), per_row):  # numbers, and one value per row left on the CPU
        expected = corrupt_av(clean, noise, snr, 3, torch.Generator().manual_seed(1))
        got = corrupt_av(on_device, noise, snr, 3, torch.Generator().manual_seed(1), voiced_power(wave))
        for name, values in got.items():
            assert values.device == device and torch.equal(values.cpu(), expected[name]), name
    # Without a generator the draws are made on the device (the fake device's come from torch's default CPU
    # generator, as the CPU's do), with no host synchronisation when the noise is a number.
    torch.manual_seed(2)
    expected = corrupt_images(clean["image"], 0.3, 3), add_noise_at_snr(wave, 5.0)
    torch.manual_seed(2)
    with fake.count_syncs() as syncs:
        got = corrupt_images(on_device["image"], 0.3, 3), add_noise_at_snr(on_device["waveform"], 5.0)
    assert not syncs, dict(syncs)
    assert all(x.device == device and torch.equal(x.cpu(), y) for x, y in zip(got, expected))
    spectrogram = log_mel_spectrogram(on_device["waveform"])
    assert spectrogram.device == device and torch.equal(spectrogram.cpu(), log_mel_spectrogram(wave))
    assert torch.equal(mel_filterbank(device=device).cpu(), mel_filterbank())


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"image_noise": -1.0}, "image_noise"),
        ({"occlusion": 9}, "occlusion"),
        ({"occlusion": 2.5}, "occlusion"),
        ({"audio_snr_db": float("nan")}, "audio_snr_db"),
        ({"fractions": (0.5, 0.5)}, "fractions"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_av_digits(**kwargs)


def test_learner_dataset_is_accepted_and_split(av):
    mine = Dataset.from_dict({
        "image": torch.rand(30, 1, 8, 8).numpy(),
        "audio": torch.rand(30, 1, 32, 40).numpy(),
        "label": list(range(10)) * 3,
    })
    ds = load_av_digits(source=mine)
    assert [len(ds[s]) for s in ("train", "validation", "test")] == [18, 6, 6]
    assert ds["train"][0]["image"].shape == (1, 8, 8)
    assert len(load_av_digits(source=av)["test"]) == len(av["test"])


@pytest.mark.parametrize(
    "columns, match",
    [
        ({"image": [[0.0] * 64] * 4, "audio": [[[[0.0] * 40] * 32]] * 4, "label": [0] * 4},
         r"'image' \(float, shape \(1, 8, 8\)\)"),
        ({"image": [[[[0.0] * 8] * 8]] * 4, "label": [0] * 4}, "missing \\['audio'\\]"),
        ({"image": [[[[0.0] * 8] * 8]] * 4, "audio": [[[[0.0] * 40] * 32]] * 4, "label": ["one"] * 4}, "'label'"),
    ],
)
def test_wrong_learner_dataset_is_rejected(columns, match):
    with pytest.raises(ValueError, match=match):
        load_av_digits(source=Dataset.from_dict(columns))
    with pytest.raises(ValueError, match="datasets.Dataset"):
        load_av_digits(source={"train": 1})


class _Concat(nn.Module):
    def __init__(self, modalities):
        super().__init__()
        self.encoders = nn.ModuleList(ImageEncoder() if m == "image" else AudioEncoder() for m in modalities)
        self.head = nn.Linear(64 * len(modalities), 10)

    def forward(self, *xs):
        return self.head(torch.cat([e(x) for e, x in zip(self.encoders, xs)], 1))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_default_noise_makes_fusion_worthwhile(seed):
    """The numbers stated in load_av_digits' docstring: each modality alone is clearly imperfect
    (0.6 to 0.9), the two together clearly better (at least 0.05 above the better one)."""
    ds = load_av_digits(seed=seed)
    accuracy = {}
    for modalities in (("image",), ("audio",), ("image", "audio")):
        torch.manual_seed(seed)
        model = _Concat(modalities)
        fit(model, ds["train"], modalities, epochs=15, seed=seed, progress=False, device="cpu")
        accuracy[modalities] = evaluate(model, ds["test"], modalities)["accuracy"]
    image, audio, both = accuracy[("image",)], accuracy[("audio",)], accuracy[("image", "audio")]
    assert 0.6 < image < 0.85 and 0.65 < audio < 0.9, accuracy
    assert both > max(image, audio) + 0.05 and both > 0.85, accuracy


def test_the_same_arguments_return_the_same_data_at_once():
    first = load_av_digits(seed=5)
    assert load_av_digits(seed=5) is first  # kept, not rebuilt
    other = load_av_digits(seed=6)
    assert other is not first and not torch.equal(other["train"]["image"][:5], first["train"]["image"][:5])
    assert load_av_digits(image_noise=0.3, occlusion=3, audio_snr_db=0, seed=5) is first  # same values, same data
