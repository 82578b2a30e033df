"""MkDocs hook: serve mermaid from the built site, so the manual's diagrams render offline.

mkdocs-material draws ```` ```mermaid ```` blocks with the global ``mermaid``, and
fetches it from a CDN at view time when no page script defines it. This hook puts
the npm package's browser build (pinned by package.json and package-lock.json,
installed by ``scripts/setup`` with ``npm ci``) into the site as
:data:`TARGET`, which ``extra_javascript`` in mkdocs.yml loads on every page.
"""

from __future__ import annotations

from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "node_modules" / "mermaid" / "dist" / "mermaid.min.js"
#: Where the site serves it (mkdocs.yml's extra_javascript names the same path).
TARGET = "assets/javascripts/mermaid.min.js"


def on_files(files: Files, config: MkDocsConfig) -> Files:
    if not SOURCE.is_file():
        raise PluginError(
            f"{SOURCE.relative_to(ROOT)} is missing: the manual serves mermaid itself "
            "(no CDN). Install it with 'bash scripts/setup' (it runs 'npm ci')"
        )
    files.append(File.generated(config, TARGET, abs_src_path=str(SOURCE)))
    return files
