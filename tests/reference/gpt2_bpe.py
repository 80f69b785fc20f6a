"""A slow, obviously-correct GPT-2 byte-level BPE encoder, independent of transformers.

Used only by tests: it reads OpenAI's two files and applies the algorithm literally —
split the text with GPT-2's pre-tokenisation pattern, map each UTF-8 byte of a piece to its
printable stand-in character, then repeatedly merge the adjacent pair with the lowest merge rank.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import regex

# GPT-2's pre-tokenisation: contractions, optional-space + letters / digits / other symbols,
# whitespace not followed by a non-space, then any remaining whitespace.
PATTERN = regex.compile(
    r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
)


def byte_stand_ins() -> dict[int, str]:
    """Byte → printable character: printable Latin-1 bytes map to themselves, the other 68 bytes
    to code points 256, 257, … in byte order."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    printable += list(range(ord("®"), ord("ÿ") + 1))
    table, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            table[byte] = chr(byte)
        else:
            table[byte] = chr(256 + extra)
            extra += 1
    return table


class ReferenceBPE:
    def __init__(self, encoder_path: Path, merges_path: Path):
        self.encoder = json.loads(Path(encoder_path).read_text(encoding="utf-8"))
        lines = Path(merges_path).read_text(encoding="utf-8").split("\n")
        pairs = [tuple(line.split(" ")) for line in lines[1:] if line]
        self.rank = {pair: index for index, pair in enumerate(pairs)}
        self.stand_in = byte_stand_ins()

    def merge(self, symbols: list[str]) -> list[str]:
        while len(symbols) > 1:
            ranked = [
                (self.rank[(a, b)], i)
                for i, (a, b) in enumerate(itertools.pairwise(symbols))
                if (a, b) in self.rank
            ]
            if not ranked:
                return symbols
            best = min(ranked)[0]
            left, right = next(p for p in itertools.pairwise(symbols) if self.rank.get(p) == best)
            merged, i = [], 0
            while i < len(symbols):  # merge every occurrence of the best pair, left to right
                if i + 1 < len(symbols) and symbols[i] == left and symbols[i + 1] == right:
                    merged.append(left + right)
                    i += 2
                else:
                    merged.append(symbols[i])
                    i += 1
            symbols = merged
        return symbols

    def encode(self, text: str) -> list[int]:
        ids = []
        for piece in PATTERN.findall(text):
            symbols = [self.stand_in[b] for b in piece.encode("utf-8")]
            ids.extend(self.encoder[s] for s in self.merge(symbols))
        return ids
