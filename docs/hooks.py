"""MkDocs hooks: fill in the generated parts of the pages from the installed trainer.

Each marker such as ``<!-- reference: config -->`` or ``<!-- render: regime3 -->``
opens a block, closed by ``<!-- end reference: config -->``, whose content
:func:`trainer.reference.expand` builds afresh from the code at every build. The
committed pages carry the same content (``python -m trainer.reference_blocks
docs/pages`` rewrites it; a test checks it is current). The status-file page is
checked against the keys the code writes: a key it does not document is a warning,
which fails a ``--strict`` build.
"""

from __future__ import annotations

import logging
from typing import Any

from trainer import reference

log = logging.getLogger("mkdocs.hooks.trainer")

STATUS_PAGE = "reference/status-file.md"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Replace the markers of one page; check the status-file page."""
    if page.file.src_uri == STATUS_PAGE:
        undocumented = sorted(reference.status_keys() - reference.documented_status_keys(markdown))
        if undocumented:
            log.warning("%s does not document the status.json keys %s", STATUS_PAGE, ", ".join(undocumented))
    return reference.expand(markdown)
