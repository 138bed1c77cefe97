"""fixtures/ stays small: every new reference material adds to every clone, so the folder has a budget."""

from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
#: bytes; the issue that set it: 40 MB for every reference result (issue #19)
BUDGET_BYTES = 40 * 1024**2


def test_fixtures_fit_the_budget():
    sizes = {path: path.stat().st_size for path in FIXTURES.rglob("*") if path.is_file()}
    total = sum(sizes.values())
    largest = sorted(sizes.items(), key=lambda item: -item[1])[:5]
    listing = ", ".join(f"{path.relative_to(FIXTURES)} {size / 1024**2:.1f} MB" for path, size in largest)
    assert total <= BUDGET_BYTES, f"fixtures/ holds {total / 1024**2:.1f} MB (budget 40 MB); largest: {listing}"
