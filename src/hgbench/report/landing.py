"""``reports/index.html``: the page a user opens, linking every profile's report on disk.

Each profile writes its own report (``reports/<profile>/index.html``), so running one profile
never replaces or stands in for another's. The landing page is rewritten by every
``hgbench report --index``: the report just written first, then the others, newest first. It
describes what is on disk, so it is no output of any one profile's pipeline (neither Snakemake
nor DVC track it); a report folder removed by hand simply drops out at the next rewrite.
"""

from __future__ import annotations

import html
import re
import time
from pathlib import Path

from hgbench.iofiles import atomic_path

_TITLE = re.compile(r"<title>(.*?)</title>", re.S | re.I)


def _title(page: Path) -> str:
    """The page's <title> (already HTML-escaped by the report template), or its folder's name."""
    try:
        head = page.read_text(encoding="utf-8", errors="replace")[:4096]
    except OSError:
        return html.escape(page.parent.name)
    m = _TITLE.search(head)
    return m.group(1).strip() if m else html.escape(page.parent.name)


def find_reports(root: Path) -> list[Path]:
    """``root/<profile>/index.html`` files, newest first."""
    pages = [p for p in Path(root).glob("*/index.html") if p.is_file()]
    return sorted(pages, key=lambda p: (-p.stat().st_mtime, p.parent.name))


def write_landing(index: Path, latest: Path | None = None) -> Path:
    """Write ``index`` listing the reports in its folder's sub-folders; ``latest`` comes first.

    Links are relative (``<profile>/index.html``), so the folder can be moved or served as is.
    """
    index = Path(index)
    pages = find_reports(index.parent)
    if latest is not None:
        latest = Path(latest).resolve()
        pages.sort(key=lambda p: p.resolve() != latest)  # stable: the rest stay newest first
    rows = []
    for i, page in enumerate(pages):
        rel = page.relative_to(index.parent).as_posix()
        written = time.strftime("%Y-%m-%d %H:%M", time.localtime(page.stat().st_mtime))
        mark = " <strong>(written last)</strong>" if i == 0 and latest is not None else ""
        rows.append(
            f'<li><a href="{html.escape(rel, quote=True)}">{_title(page)}</a> — profile '
            f"<code>{html.escape(page.parent.name)}</code>, written {written}{mark}</li>"
        )
    body = "\n".join(rows) if rows else "<li>No report yet: run <code>make demo</code>.</li>"
    first = ""
    if pages:
        target = html.escape(pages[0].relative_to(index.parent).as_posix(), quote=True)
        first = f'<p>Open <a href="{target}">the report written last</a>, or another profile\'s below.</p>'
    page = f"""<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>hgbench reports</title>
<style>body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}}
li{{margin:.4rem 0}}</style></head>
<body>
<h1>hgbench reports</h1>
{first}
<p>One report per params profile (<code>reports/&lt;profile&gt;/index.html</code>); each shows only
that profile's runs.</p>
<ul>
{body}
</ul>
</body>
</html>
"""
    with atomic_path(index) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return index
