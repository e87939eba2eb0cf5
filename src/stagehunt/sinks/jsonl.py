"""JSON lines: one finding per line, `Finding.to_dict()` with evidence as objects."""

from __future__ import annotations

import orjson

from stagehunt.findings import Finding
from stagehunt.sinks.base import Sink, scrub


def dumps(obj: object) -> str:
    """One line of JSON; strings orjson refuses (lone surrogates) are repaired rather than aborting the run."""
    try:
        data = orjson.dumps(obj, option=orjson.OPT_APPEND_NEWLINE)
    except orjson.JSONEncodeError:
        data = orjson.dumps(scrub(obj), option=orjson.OPT_APPEND_NEWLINE)
    return data.decode("utf-8")


class JsonlSink(Sink):
    def write(self, finding: Finding) -> None:
        self.stream.write(dumps(finding.to_dict()))
