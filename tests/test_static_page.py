"""The browser demo's files: every asset is local (users run hush offline, so no CDN), and
every file the page references exists. The browser test checks the same at run time by
watching the page's requests; this one runs without chromium."""

from __future__ import annotations

import re
from pathlib import Path

STATIC = Path(__file__).resolve().parents[1] / "service" / "static"

# References a page can make to other files: HTML attributes, ES module imports, the
# AudioWorklet module, CSS url(...).
PATTERNS = [
    re.compile(r"""\b(?:src|href)\s*=\s*["']([^"']+)["']"""),
    re.compile(r"""\bimport\s+(?:[^'"]*?\bfrom\s+)?["']([^"']+)["']"""),
    re.compile(r"""\baddModule\(\s*["']([^"']+)["']"""),
    re.compile(r"""url\(\s*["']?([^"')]+)["']?\s*\)"""),
]


def references(text: str) -> list[str]:
    return [match for pattern in PATTERNS for match in pattern.findall(text)]


def test_every_asset_is_local_and_present():
    files = sorted(p for p in STATIC.iterdir() if p.suffix in {".html", ".js", ".css"})
    assert {p.name for p in files} >= {"index.html", "app.js", "live.js", "worklet.js", "style.css"}
    seen = set()
    for path in files:
        for ref in references(path.read_text()):
            if ref.startswith(("#", "data:", "blob:")) or ref in {"/docs", "/v1/models"}:
                continue
            assert not re.match(r"^(?:[a-z]+:)?//", ref), f"{path.name} loads {ref} from another host"
            if ref.startswith("/static/"):
                target = STATIC / ref.removeprefix("/static/")
            else:
                assert ref.startswith("./"), f"{path.name}: unexpected reference {ref}"
                target = path.parent / ref
            assert target.is_file(), f"{path.name} references {ref}, which does not exist"
            seen.add(target.name)
    # Each script and the stylesheet is reachable from the page.
    assert {"app.js", "live.js", "worklet.js", "spectrogram.js", "files.js", "wav.js", "style.css"} <= seen
