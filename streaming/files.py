"""Batch enhancement of files and folders (the engine behind ``hush enhance``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .audio_io import SUPPORTED_SUFFIXES, AudioFileError, enhance_signal, read_audio, write_audio
from .engine import Enhancer

# Audio-looking files that we list as failures (so the user hears about them) rather
# than skip silently when they sit in an input folder.
OTHER_AUDIO_SUFFIXES = {".mp3", ".m4a", ".aac", ".wma", ".aiff", ".aif", ".au", ".amr", ".webm", ".mp4"}


@dataclass
class Job:
    source: Path
    target: Path


@dataclass
class BatchReport:
    done: list[Job] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    ignored: list[Path] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


def plan_jobs(inputs: Iterable[Path], output: Path) -> tuple[list[Job], list[Path], list[tuple[Path, str]]]:
    """Decide where each input goes.

    * one input file and an output path with an audio suffix: write exactly there;
    * otherwise ``output`` is a folder: a file input is written as ``output/<its name>``, and
      each file inside a folder input as ``output/<its path relative to that folder>``,
      mirroring sub-folders (as ``cp -r DIR/. OUT`` and ``deepFilter -o`` do).

    Two inputs that would land on the same output path are not both written: the second
    is listed as failed, so no result is silently overwritten.

    Returns (jobs, ignored non-audio files, inputs that failed before any work: missing
    inputs and output collisions).
    """
    inputs = list(inputs)
    jobs: list[Job] = []
    ignored: list[Path] = []
    failed: list[tuple[Path, str]] = []
    single_file = len(inputs) == 1 and inputs[0].is_file() and output.suffix.lower() in SUPPORTED_SUFFIXES
    if single_file:
        return [Job(inputs[0], output)], ignored, failed
    claimed: dict[Path, Path] = {}  # output path -> the input written there

    def add(source: Path, target: Path) -> None:
        key = target.resolve()
        if key in claimed:
            failed.append((source, f"output {target} is already written from {claimed[key]}"))
            return
        claimed[key] = source
        jobs.append(Job(source, target))

    for item in inputs:
        if item.is_dir():
            for path in sorted(p for p in item.rglob("*") if p.is_file()):
                suffix = path.suffix.lower()
                if suffix in SUPPORTED_SUFFIXES or suffix in OTHER_AUDIO_SUFFIXES:
                    add(path, output / path.relative_to(item))
                else:
                    ignored.append(path)
        elif item.is_file():
            add(item, output / item.name)
        else:
            failed.append((item, "no such file or folder"))
    return jobs, ignored, failed


def enhance_file(enhancer: Enhancer, job: Job, attenuation_limit_db: float | None = None) -> None:
    """Read, enhance (all channels, native rate) and write one file in its own format."""
    if job.source.suffix.lower() in OTHER_AUDIO_SUFFIXES:
        raise AudioFileError(f"{job.source}: unsupported format {job.source.suffix} (use WAV, FLAC or Ogg)")
    audio, info = read_audio(job.source)
    enhanced = enhance_signal(enhancer, audio, info.sample_rate, attenuation_limit_db)
    job.target.parent.mkdir(parents=True, exist_ok=True)
    write_audio(job.target, enhanced, info)


def enhance_files(
    enhancer: Enhancer,
    inputs: Iterable[Path],
    output: Path,
    attenuation_limit_db: float | None = None,
    progress: Callable[[Iterable[Job]], Iterable[Job]] | None = None,
) -> BatchReport:
    """Enhance every input; one bad file never stops the batch (see ``BatchReport.failed``)."""
    jobs, ignored, failed = plan_jobs(inputs, output)
    report = BatchReport(ignored=ignored, failed=failed)
    for job in progress(jobs) if progress else jobs:
        if job.source.resolve() == job.target.resolve():
            report.failed.append((job.source, "output would overwrite the input"))
            continue
        try:
            enhance_file(enhancer, job, attenuation_limit_db)
        except (AudioFileError, OSError, ValueError) as err:
            report.failed.append((job.source, str(err)))
        else:
            report.done.append(job)
    return report
