"""Voice messages (MISSION A14): check an upload really is audio, and turn it into what phones play.

Phones and PBXs play narrowband telephony audio, so every message is stored once in
one shape: 8 kHz, mono, 16-bit PCM WAV (or, on request, G.711 A-law WAV, the
European PSTN codec, which many PBXs play without transcoding).  An upload is
accepted as WAV, MP3 or OGG (Vorbis/Opus) only after it has been *decoded* in full:
a renamed PDF or a truncated file fails here with a clear message instead of
playing silence to callers later.  Levels are peak-normalised so messages recorded
at different volumes sound alike.

Decoding and encoding use ``soundfile`` (libsndfile, whose wheels bundle MP3, Vorbis
and Opus support) and resampling ``soxr`` (the SoX resampler); text-to-speech runs
the ``espeak-ng`` binary when the host has it (voice ``sv`` by default).

The database stores the normalised bytes (or a path to them), ``encoding``,
``sample_rate``, ``duration`` and the original file name and format from
:class:`AudioInfo`; "in use" checks ask the schedules, menus and queues for their
message references.
"""

from __future__ import annotations

import functools
import io
import math
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

__all__ = [
    "ACCEPTED_FORMATS",
    "AudioInfo",
    "MediaError",
    "MediaLimits",
    "NormalisedAudio",
    "TTSUnavailable",
    "espeak_binary",
    "espeak_voices",
    "normalise",
    "probe",
    "text_to_speech",
]

#: libsndfile container names we accept, and how we name them to users.
ACCEPTED_FORMATS = {"WAV": "WAV", "WAVEX": "WAV", "MP3": "MP3", "OGG": "OGG"}
TARGET_RATE = 8000
ENCODINGS = {"pcm16": "PCM_16", "alaw": "ALAW"}
#: Below this peak (about -60 dBFS) a recording is treated as silence.
SILENCE_PEAK = 1e-3


class MediaError(ValueError):
    """An upload or a text-to-speech request that cannot become a voice message.

    ``code`` is stable for APIs: ``too_large``, ``not_audio``, ``unsupported_format``,
    ``empty``, ``too_long``, ``silent``, ``bad_text``, ``bad_voice``, ``tts_unavailable``,
    ``tts_failed``.
    """

    def __init__(self, code: str, message: str):
        self.code = code
        super().__init__(message)


class TTSUnavailable(MediaError):
    """``espeak-ng`` is not installed on this host."""


@dataclass(frozen=True)
class MediaLimits:
    """Upload limits: bytes of the file as uploaded, seconds of audio."""

    max_bytes: int = 10 * 1024 * 1024
    max_seconds: float = 300.0

    def __post_init__(self) -> None:
        if self.max_bytes <= 0 or not self.max_seconds > 0:
            raise ValueError("media limits must be positive")


@dataclass(frozen=True)
class AudioInfo:
    """What an upload turned out to be after decoding it."""

    format: str  # WAV, MP3 or OGG
    subtype: str  # libsndfile's codec name, e.g. PCM_16, MPEG_LAYER_III, VORBIS, OPUS
    sample_rate: int
    channels: int
    duration: float  # seconds, from the decoded samples


@dataclass(frozen=True)
class NormalisedAudio:
    """A voice message ready to store and serve: WAV bytes at 8 kHz mono."""

    data: bytes
    encoding: str  # pcm16 or alaw
    sample_rate: int
    duration: float
    source: AudioInfo
    gain_db: float  # applied by peak normalisation

    @property
    def content_type(self) -> str:
        return "audio/wav"


def _human_bytes(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB" if n >= 1024 * 1024 else f"{n / 1024:.0f} kB"


def _decode(data: bytes, limits: MediaLimits) -> tuple[np.ndarray, AudioInfo]:
    if len(data) > limits.max_bytes:
        raise MediaError(
            "too_large",
            f"The file is {_human_bytes(len(data))}; voice messages may be at most {_human_bytes(limits.max_bytes)}.",
        )
    if not data:
        raise MediaError("empty", "The file is empty.")
    try:
        with sf.SoundFile(io.BytesIO(data)) as f:
            container, subtype, rate, channels = f.format, f.subtype, f.samplerate, f.channels
            if container not in ACCEPTED_FORMATS:
                raise MediaError(
                    "unsupported_format",
                    f"This is a {f.format_info} file; upload the message as WAV, MP3 or OGG.",
                )
            max_frames = int(math.ceil(limits.max_seconds * rate))
            # Decode everything, but never more than the limit (a small MP3 can hold hours):
            # proves the whole file is audio, not just its header.  Header frame counts are
            # not trusted (streamed WAVs and VBR MP3s get them wrong).
            samples = f.read(frames=max_frames + 1, dtype="float32", always_2d=True)
    except MediaError:
        raise
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        reason = str(getattr(exc, "error_string", "") or exc).strip().rstrip(".")
        raise MediaError(
            "not_audio", f"The file could not be read as audio ({reason}); upload the message as WAV, MP3 or OGG."
        ) from None
    if len(samples) == 0:
        raise MediaError("empty", "The file contains no audio.")
    if len(samples) > max_frames:
        raise MediaError("too_long", _too_long(limits))
    if not np.isfinite(samples).all():
        raise MediaError("not_audio", "The file contains invalid samples; export it again as WAV, MP3 or OGG.")
    info = AudioInfo(ACCEPTED_FORMATS[container], subtype, rate, channels, len(samples) / rate)
    return samples, info


def _too_long(limits: MediaLimits) -> str:
    return f"The recording is too long; voice messages may be at most {limits.max_seconds:g} s."


def probe(data: bytes, *, limits: MediaLimits = MediaLimits()) -> AudioInfo:
    """Decode an upload completely and describe it; :class:`MediaError` if it is not acceptable audio."""
    return _decode(data, limits)[1]


def normalise(
    data: bytes,
    *,
    limits: MediaLimits = MediaLimits(),
    encoding: str = "pcm16",
    peak_dbfs: float = -1.0,
) -> NormalisedAudio:
    """Validate an upload and convert it to an 8 kHz mono WAV (``pcm16`` or G.711 ``alaw``),
    peak-normalised to ``peak_dbfs`` (default -1 dBFS, headroom for the A-law companding)."""
    if encoding not in ENCODINGS:
        raise ValueError(f"unknown encoding {encoding!r}; use one of {sorted(ENCODINGS)}")
    if not peak_dbfs <= 0:
        raise ValueError("peak_dbfs must be 0 or below")
    samples, info = _decode(data, limits)
    mono = samples.mean(axis=1, dtype=np.float64)
    if info.sample_rate != TARGET_RATE:
        mono = soxr.resample(mono, info.sample_rate, TARGET_RATE, quality="HQ")
    peak = float(np.max(np.abs(mono))) if len(mono) else 0.0
    if peak < SILENCE_PEAK:
        raise MediaError("silent", "The recording is silent; check the microphone and record it again.")
    target = 10 ** (peak_dbfs / 20)
    gain = target / peak
    out = np.clip(mono * gain, -1.0, 1.0)
    buffer = io.BytesIO()
    sf.write(buffer, out, TARGET_RATE, format="WAV", subtype=ENCODINGS[encoding])
    return NormalisedAudio(
        data=buffer.getvalue(),
        encoding=encoding,
        sample_rate=TARGET_RATE,
        duration=len(out) / TARGET_RATE,
        source=info,
        gain_db=20 * math.log10(gain),
    )


# -- text to speech -------------------------------------------------------------------------------


def espeak_binary() -> str | None:
    """Path of ``espeak-ng`` on this host, or ``None``."""
    return shutil.which("espeak-ng")


@functools.lru_cache(maxsize=4)
def espeak_voices(binary: str) -> frozenset[str]:
    """Language codes, voice names and voice files espeak-ng knows, lower-cased.

    Needed because espeak-ng silently falls back to another voice for many unknown
    names ("no-such-voice" speaks Norwegian) instead of failing.
    """
    result = subprocess.run([binary, "--voices"], capture_output=True, timeout=30, check=False)
    names: set[str] = set()
    for line in result.stdout.decode("utf-8", "replace").splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 5:
            names.update(f.lower() for f in (fields[1], fields[3], fields[4], fields[4].rsplit("/", 1)[-1]))
    return frozenset(names)


def text_to_speech(
    text: str,
    *,
    voice: str = "sv",
    words_per_minute: int | None = None,
    limits: MediaLimits = MediaLimits(),
    encoding: str = "pcm16",
    binary: str | None = None,
    timeout: float = 60.0,
) -> NormalisedAudio:
    """Speak ``text`` with espeak-ng (Swedish by default) and normalise it like an upload.

    Raises :class:`TTSUnavailable` when espeak-ng is not installed, and
    :class:`MediaError` for empty text (``bad_text``), an unknown voice (``bad_voice``;
    a ``+variant`` suffix such as ``sv+f3`` is allowed) or a failed run (``tts_failed``).
    """
    text = (text or "").strip()
    if not text:
        raise MediaError("bad_text", "Write the text the message should say.")
    if len(text) > 5000:
        raise MediaError("bad_text", "The text is longer than 5000 characters; split it into several messages.")
    binary = binary or espeak_binary()
    if binary is None or not Path(binary).exists():
        raise TTSUnavailable(
            "tts_unavailable",
            "Text-to-speech needs espeak-ng, which is not installed on this server "
            "(install the espeak-ng package), or upload a recording instead.",
        )
    try:
        known = espeak_voices(binary)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TTSUnavailable("tts_unavailable", f"espeak-ng could not be started: {exc}") from None
    if voice.split("+", 1)[0].strip().lower() not in known:
        raise MediaError("bad_voice", f"espeak-ng has no voice {voice!r}; use a language code such as sv or en.")
    with tempfile.TemporaryDirectory(prefix="deskprov-tts-") as tmp:
        out = Path(tmp) / "speech.wav"
        # Text goes through stdin (-b 1: UTF-8), never argv: no option injection, no length limit.
        command = [binary, "-v", voice, "-b", "1", "--stdin", "-w", str(out)]
        if words_per_minute is not None:
            command[1:1] = ["-s", str(int(words_per_minute))]
        try:
            result = subprocess.run(
                command, input=text.encode("utf-8"), capture_output=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            raise MediaError("tts_failed", f"espeak-ng took longer than {timeout:g} s.") from None
        except OSError as exc:
            raise TTSUnavailable("tts_unavailable", f"espeak-ng could not be started: {exc}") from None
        problem = (result.stderr or b"").decode("utf-8", "replace").strip()
        if result.returncode != 0 or not out.exists() or out.stat().st_size <= 44:
            detail = problem or f"exit status {result.returncode}"
            raise MediaError("tts_failed", f"espeak-ng could not speak the text with voice {voice!r}: {detail}")
        data = out.read_bytes()
    return normalise(data, limits=limits, encoding=encoding)
