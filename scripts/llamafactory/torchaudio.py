"""Stands in for torchaudio in LLaMA-Factory's test environment only (scripts/llamafactory-env.sh).

LLaMA-Factory's data module imports torchaudio at the top to read audio; no torchaudio wheel imports beside the CPU
build of torch 2.13 (the newest is 2.11.1, whose compiled library does not load). Our layouts have no audio, so
nothing calls it: anything that does fails here, saying so, rather than running on something that is not torchaudio."""


def __getattr__(name: str):
    raise ImportError(f"torchaudio.{name}: torchaudio is not installed in this environment (no audio is loaded here)")
