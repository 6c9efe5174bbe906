"""Varied texts for the tests that hold a fast search to the plain one it stands for."""

from __future__ import annotations

import base64
import random

FRAGMENTS = [
    "step 12 loss 0.123456789 accuracy 0.912\n",
    "  region  sex  count\n",
    "0  north    F    120\n",
    "1  south    M      3\n",
    "region n\nnorth 140\neast 4\n",
    "north    140\neast       4\nName: count, dtype: int64\n",
    "n=5000, mean 42.123456789012\n",
    "checkpoint after 50 steps, region north has 1203 records\n",
    "| sex | n |\n|---|--:|\n| F | 3 |\n",
    "patient P10001 seen, ada.abbott@example.org 1957-03-02\n",
    "records total\n12 40\n",
    "3.14159265358979 and 2.718281828459045.\n",
    "id_1234567890123 x_99999999999.5 1234567.1234567\n",
    "\r\n",
    "caf\u00e9 s\u00e9rie count\n",
    "\u0663\u0664\u0665\u0666\u0667\u0668\u0669\u0660\u0661\u0662\n",
    "\t(a,b) [c] {d} <e> 'f' \"g\";\n",
    "deadbeef" * 9 + "\n",
    "12:34:56:78:9a:bc:de:f0:" * 6 + "\n",
    "9" * 45 + "\n",
    "",
]


def texts(count: int, seed: int = 3) -> list[str]:
    """Texts joined from fragments a log or table holds, and payloads of several kinds."""
    rng = random.Random(seed)
    found = []
    for _ in range(count):
        parts = []
        for _ in range(rng.randint(1, 12)):
            roll = rng.random()
            if roll < 0.1:
                raw = rng.randbytes(rng.randint(20, 80))
                parts.append(base64.b64encode(raw).decode() + rng.choice(["\n", " ", ","]))
            elif roll < 0.15:
                parts.append(
                    "".join(rng.choice("aZ9+/_-:.=xQ") for _ in range(rng.randint(20, 70)))
                )
            else:
                parts.append(rng.choice(FRAGMENTS))
        found.append("".join(parts))
    return found
