"""The README and docs stand alone: every relative link resolves to a file of the
repository, none points outside it, and the architecture page is linked from the README."""

import re
from pathlib import Path

from project.event_handlers import HANDLERS

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)#\s]+)(#[^)\s]*)?\)")


def _relative_links(document: Path) -> list[str]:
    links = [match.group(1) for match in LINK.finditer(document.read_text())]
    return [link for link in links if not re.match(r"[a-z]+:", link)]


def test_every_relative_link_resolves_inside_the_repository():
    broken = []
    for document in DOCUMENTS:
        for link in _relative_links(document):
            target = (document.parent / link).resolve()
            if not target.is_relative_to(ROOT) or not target.exists():
                broken.append(f"{document.name}: {link}")

    assert broken == []


def test_no_document_names_a_path_outside_the_repository():
    outside = [doc.name for doc in DOCUMENTS if "../shared" in doc.read_text()]

    assert outside == []


def test_the_readme_links_the_architecture_and_its_quick_start_names_the_port():
    readme = (ROOT / "README.md").read_text()
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.search(r"```sh\n(.*?)```", quick_start, re.S).group(1).splitlines()

    assert "[docs/architecture.md](docs/architecture.md)" in readme
    assert [line.split()[:2] for line in commands] == [["make", "run"], ["make", "test"]]
    assert "make run PORT=8401" in commands[0]


def test_the_architecture_page_has_its_diagram_and_every_event_of_the_map():
    architecture = (ROOT / "docs" / "architecture.md").read_text()

    assert "```mermaid" in architecture
    missing = [
        event for event, handlers in HANDLERS.items() if handlers and event not in architecture
    ]
    assert missing == []
