"""Voice messages: real decoding of WAV/MP3/OGG made in code, normalisation, rejection, espeak-ng."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf

from provisioning import media
from provisioning.media import MediaError, MediaLimits, TTSUnavailable, normalise, probe, text_to_speech

FORMATS = [
    ("WAV", "PCM_16", 44100),
    ("WAV", "FLOAT", 16000),
    ("MP3", "MPEG_LAYER_III", 44100),
    ("OGG", "VORBIS", 22050),
    ("OGG", "OPUS", 48000),
]


def tone(fmt: str, subtype: str, rate: int, *, seconds: float = 1.0, freq: float = 440.0, amplitude: float = 0.25,
         channels: int = 2) -> bytes:
    """A sine tone encoded in memory by libsndfile, the way a user's recorder would deliver it."""
    t = np.arange(int(rate * seconds)) / rate
    signal = amplitude * np.sin(2 * np.pi * freq * t)
    data = np.stack([signal] * channels, axis=1) if channels > 1 else signal
    buffer = io.BytesIO()
    sf.write(buffer, data, rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


def dominant_frequency(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[np.argmax(spectrum)])


def test_this_libsndfile_decodes_mp3_and_ogg():
    formats = sf.available_formats()
    assert {"WAV", "MP3", "OGG"} <= set(formats)
    assert "MPEG_LAYER_III" in sf.available_subtypes("MP3") and "VORBIS" in sf.available_subtypes("OGG")


@pytest.mark.parametrize(("fmt", "subtype", "rate"), FORMATS)
def test_uploads_become_8khz_mono_pcm_wav_peak_normalised(fmt, subtype, rate):
    result = normalise(tone(fmt, subtype, rate))
    assert result.source.format == fmt and result.source.subtype == subtype
    assert result.source.sample_rate == rate and result.source.channels == 2
    info = sf.info(io.BytesIO(result.data))
    assert (info.format, info.subtype, info.samplerate, info.channels) == ("WAV", "PCM_16", 8000, 1)
    assert result.data[:4] == b"RIFF" and result.content_type == "audio/wav"
    assert result.duration == pytest.approx(1.0, abs=0.1)
    assert result.duration == pytest.approx(info.frames / 8000)
    samples, _ = sf.read(io.BytesIO(result.data))
    assert np.max(np.abs(samples)) == pytest.approx(10 ** (-1 / 20), abs=0.01)  # -1 dBFS
    assert dominant_frequency(samples, 8000) == pytest.approx(440, abs=5)
    assert result.gain_db == pytest.approx(20 * np.log10(0.891 / 0.25), abs=1.0)


def test_alaw_output_is_a_g711_wav():
    result = normalise(tone("WAV", "PCM_16", 16000, channels=1), encoding="alaw")
    assert result.encoding == "alaw"
    assert int.from_bytes(result.data[20:22], "little") == 6  # WAVE_FORMAT_ALAW
    info = sf.info(io.BytesIO(result.data))
    assert (info.subtype, info.samplerate, info.channels) == ("ALAW", 8000, 1)
    samples, _ = sf.read(io.BytesIO(result.data))
    assert dominant_frequency(samples, 8000) == pytest.approx(440, abs=5)


def test_already_telephony_audio_is_kept_at_8khz():
    result = normalise(tone("WAV", "PCM_16", 8000, channels=1, seconds=2.5))
    assert result.duration == pytest.approx(2.5) and result.source.sample_rate == 8000


def test_probe_describes_without_converting():
    info = probe(tone("MP3", "MPEG_LAYER_III", 44100, seconds=2))
    assert (info.format, info.channels) == ("MP3", 2) and info.duration == pytest.approx(2.0, abs=0.1)


@pytest.mark.parametrize(
    ("data", "code", "words"),
    [
        (b"", "empty", "empty"),
        (b"%PDF-1.4\n" + bytes(2000), "not_audio", "could not be read as audio"),
        (b"Hello, this is a text file pretending to be audio.\n" * 20, "not_audio", "WAV, MP3 or OGG"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", "not_audio", "could not be read"),
    ],
)
def test_garbage_is_rejected_clearly(data, code, words):
    with pytest.raises(MediaError) as caught:
        normalise(data)
    assert caught.value.code == code and words in str(caught.value)


def test_other_audio_formats_are_refused_by_name():
    with pytest.raises(MediaError) as caught:
        normalise(tone("FLAC", "PCM_16", 16000))
    assert caught.value.code == "unsupported_format"
    assert "FLAC" in str(caught.value) and "WAV, MP3 or OGG" in str(caught.value)
    with pytest.raises(MediaError, match="AIFF"):
        normalise(tone("AIFF", "PCM_16", 16000))


def test_size_and_duration_limits():
    data = tone("WAV", "PCM_16", 16000, seconds=3)
    with pytest.raises(MediaError) as caught:
        normalise(data, limits=MediaLimits(max_bytes=50_000))
    assert caught.value.code == "too_large" and "at most 49 kB" in str(caught.value)
    with pytest.raises(MediaError) as caught:
        normalise(data, limits=MediaLimits(max_seconds=2))
    assert caught.value.code == "too_long" and "at most 2 s" in str(caught.value)
    assert normalise(data, limits=MediaLimits(max_seconds=3)).duration == pytest.approx(3)
    with pytest.raises(MediaError, match="too long"):
        normalise(tone("MP3", "MPEG_LAYER_III", 44100, seconds=3), limits=MediaLimits(max_seconds=1))


def test_silence_is_rejected():
    with pytest.raises(MediaError) as caught:
        normalise(tone("WAV", "PCM_16", 8000, amplitude=0.0))
    assert caught.value.code == "silent"


def test_bad_parameters():
    with pytest.raises(ValueError, match="encoding"):
        normalise(tone("WAV", "PCM_16", 8000), encoding="gsm")
    with pytest.raises(ValueError):
        MediaLimits(max_bytes=0)


# -- text to speech ------------------------------------------------------------------------------------

needs_espeak = pytest.mark.skipif(
    media.espeak_binary() is None, reason="espeak-ng is not installed on this machine (apt-get install espeak-ng)"
)


@needs_espeak
def test_swedish_text_to_speech_is_a_normalised_message():
    result = text_to_speech("Växeln är stängd. Våra öppettider är vardagar 8 till 17.")
    info = sf.info(io.BytesIO(result.data))
    assert (info.samplerate, info.channels, info.subtype) == (8000, 1, "PCM_16")
    assert 2.0 < result.duration < 15.0
    samples, _ = sf.read(io.BytesIO(result.data))
    assert np.max(np.abs(samples)) == pytest.approx(10 ** (-1 / 20), abs=0.01)


@needs_espeak
def test_text_to_speech_speed_alaw_and_errors():
    slow = text_to_speech("Vi har lunchstängt.", words_per_minute=100, encoding="alaw")
    fast = text_to_speech("Vi har lunchstängt.", words_per_minute=300)
    assert slow.encoding == "alaw" and slow.duration > fast.duration
    with pytest.raises(MediaError) as caught:
        text_to_speech("hej", voice="no-such-voice")  # espeak-ng itself would quietly speak Norwegian
    assert caught.value.code == "bad_voice" and "no-such-voice" in str(caught.value)
    assert text_to_speech("hej", voice="sv+f3").duration > 0.1  # voice variants are fine
    dashed = text_to_speech("-v en --help")  # text starting with a dash is spoken, not parsed as options
    assert dashed.duration > 0.5


def test_text_to_speech_without_espeak_says_so(tmp_path):
    with pytest.raises(TTSUnavailable) as caught:
        text_to_speech("Hej", binary=str(tmp_path / "espeak-ng"))
    assert caught.value.code == "tts_unavailable" and "espeak-ng" in str(caught.value)


def test_text_to_speech_needs_text():
    with pytest.raises(MediaError) as caught:
        text_to_speech("   ")
    assert caught.value.code == "bad_text"
