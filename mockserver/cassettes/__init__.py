"""vcrpy cassettes: the model and its YAML format, atomic files, matching, the loaded library,
scrubbing, and the hand-made set shipped with the project."""

from mockserver.cassettes.cassette import (
    Cassette,
    CassetteError,
    Chunk,
    Interaction,
    load_cassette,
    load_cassette_dir,
    write_cassette,
)

__all__ = [
    "Cassette",
    "CassetteError",
    "Chunk",
    "Interaction",
    "load_cassette",
    "load_cassette_dir",
    "write_cassette",
]
