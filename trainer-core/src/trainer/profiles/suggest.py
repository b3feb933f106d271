"""Rank the installed profiles for a dataset (``trainer suggest-profile``).

Each installed profile renders a sample of rows. Profiles are ranked first by
the share of rows they render, then by the mean of their own rating of those
rows (:meth:`~trainer.profiles.base.DataProfile.rate_example`, the hint a
profile declares about the data it is made for), then by how specific the fit
is: a profile that states what it suits (``suits``) and rates the rows above
zero comes before one that states nothing. Profiles still equal are tied: they
share a rank, and each names the others it is tied with.

For several datasets, :func:`propose_mixture` puts each with its best profile into a
``data.mixture`` of equal weights, and :func:`mixture_yaml` writes it as a config file's lines.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from trainer.errors import TrainerError
from trainer.profiles import installed_profiles
from trainer.profiles.base import InvalidExampleError


@dataclass
class Suggestion:
    """How one profile fares on the sample."""

    name: str
    """The profile's name."""
    description: str
    """Its one-line description."""
    suits: str
    """What data it says it is made for ("" when it does not say)."""
    rows: int = 0
    """Rows tried."""
    rendered: int = 0
    """Rows it rendered."""
    rating: float | None = None
    """Mean of its ``rate_example`` over the rendered rows; ``None`` when none rendered."""
    first_problem: str | None = None
    """Why the first row it could not render failed, with the row number."""
    rank: int = 0
    """Its place, from 1; tied profiles share a place (1, 1, 3)."""
    tied_with: list[str] = field(default_factory=list)
    """The other profiles tied with it: as many rows rendered, the same rating and specificity."""
    ranks_after: list[str] = field(default_factory=list)
    """Profiles as good on rows and rating that rank first only because they state what they suit."""

    @property
    def share(self) -> float:
        """Fraction of the sample rendered."""
        return self.rendered / self.rows if self.rows else 0.0

    @property
    def specific(self) -> bool:
        """Whether it states what it suits and rates these rows above zero."""
        return bool(self.suits) and (self.rating or 0.0) > 0.0

    def _order(self) -> tuple[float, float, bool]:
        """Sort key, best first; equal keys are a tie. Rounded: float noise must not split a tie."""
        return (-round(self.share, 9), -round(self.rating or 0.0, 9), not self.specific)

    def reason(self) -> str:
        """One line on why the profile ranks where it does."""
        if self.rendered == 0:
            return f"renders no row: {self.first_problem}"
        parts = [f"renders {self.rendered}/{self.rows} rows"]
        if self.first_problem:
            parts.append(f"first failure {self.first_problem}")
        if self.suits:
            parts.append(f"made for {self.suits}")
        if self.tied_with:
            rows = "every row" if self.rendered == self.rows else f"{self.rendered}/{self.rows} rows"
            them = "it" if self.rendered == 1 else "them"
            every = "both" if len(self.tied_with) == 1 else "all"
            parts.append(
                f"tied with {_names(self.tied_with)}: {every} render {rows} and rate {them} "
                f"{self.rating or 0.0:.2f}; choose by the answer format you want"
            )
        if self.ranks_after:
            parts.append(
                f"ranks after {_names(self.ranks_after)}: same rows and rating, but states no data it suits"
            )
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """The suggestion as plain data, for ``--json``."""
        return {
            "profile": self.name,
            "description": self.description,
            "suits": self.suits,
            "rows": self.rows,
            "rendered": self.rendered,
            "rating": self.rating,
            "first_problem": self.first_problem,
            "rank": self.rank,
            "tied_with": self.tied_with,
            "reason": self.reason(),
        }


def suggest_profiles(rows: Iterable[tuple[int, Mapping[str, Any]]]) -> list[Suggestion]:
    """Every installed profile scored on ``rows`` (``(row_number, row)`` pairs), best first.

    A profile that cannot be built without options, or that raises something
    other than ``InvalidExampleError`` on a row, is scored as not rendering it.
    """
    sample = list(rows)
    suggestions = []
    for name, entry in sorted(installed_profiles().items()):
        suggestion = Suggestion(name, entry.description, entry.profile_class.suits, rows=len(sample))
        suggestions.append(suggestion)
        try:
            profile = entry.profile_class()
        except (TrainerError, TypeError) as exc:
            suggestion.first_problem = f"it cannot be built without profile.options ({exc})"
            continue
        ratings = []
        for number, row in sample:
            try:
                profile.prepare_messages(row)
            except InvalidExampleError as exc:
                suggestion.first_problem = suggestion.first_problem or f"row {number}: {exc}"
                continue
            except Exception as exc:  # a faulty profile must not stop the ranking
                suggestion.first_problem = suggestion.first_problem or (
                    f"row {number}: the profile raised {type(exc).__name__}: {exc}"
                )
                continue
            suggestion.rendered += 1
            ratings.append(_rating(profile, row))
        suggestion.rating = sum(ratings) / len(ratings) if ratings else None
    suggestions.sort(key=lambda s: (s._order(), s.name))
    for place, suggestion in enumerate(suggestions, start=1):
        key = suggestion._order()
        above = suggestions[place - 2] if place > 1 else None
        suggestion.rank = above.rank if above and above._order() == key else place
        suggestion.tied_with = [s.name for s in suggestions if s is not suggestion and s._order() == key]
        if suggestion.rendered and not suggestion.specific:
            suggestion.ranks_after = [s.name for s in suggestions if s.specific and s._order()[:2] == key[:2]]
    return suggestions


@dataclass
class ProposedSource:
    """One dataset of a proposed mixture and the profile that fits it best."""

    path: str
    """The dataset, as the user named it."""
    profile: str
    """The best-ranked profile (the first in name order when several are tied)."""
    name: str | None = None
    """Set only where two datasets would otherwise share a name (their file names without suffix)."""
    equally_good: list[str] = field(default_factory=list)
    """Profiles tied with ``profile``: they fit as well and differ in the answer format they teach."""
    weight: float = 1.0
    """Its sampling weight: equal for every source (weights are relative)."""

    def to_dict(self) -> dict[str, Any]:
        """The source as one item of ``data.mixture``."""
        named = {} if self.name is None else {"name": self.name}
        return {"path": self.path, **named, "profile": self.profile, "weight": self.weight}


def propose_mixture(ranked: Mapping[str, list[Suggestion]]) -> list[ProposedSource]:
    """A mixture of every dataset in ``ranked`` (path to its suggestions, best first), each read by
    its best profile, with equal weights. Datasets whose file names would give two sources one
    name get distinct names (``train_1``, ``train_2``).

    :raises ValueError: a dataset has no suggestion that renders a row.
    """
    from trainer.config.mixture import SourceConfig, source_name

    proposal = []
    for path, suggestions in ranked.items():
        best = suggestions[0] if suggestions else None
        if best is None or best.rendered == 0:
            raise ValueError(f"no profile renders a row of {path!r}")
        proposal.append(ProposedSource(path, best.name, equally_good=list(best.tied_with)))
    names = [source_name(SourceConfig(path=source.path), index) for index, source in enumerate(proposal)]
    for index, source in enumerate(proposal):
        if names.count(names[index]) > 1:
            source.name = f"{names[index]}_{names[: index + 1].count(names[index])}"
    return proposal


def mixture_yaml(proposal: list[ProposedSource]) -> str:
    """``proposal`` as the ``data: mixture:`` lines of a config file; a comment names tied profiles."""
    from trainer.config.render import inline_yaml

    lines = ["data:", "  mixture:"]
    for source in proposal:
        lines.append(f"    - path: {inline_yaml(source.path)}")
        if source.name is not None:
            lines.append(f"      name: {inline_yaml(source.name)}")
        also = f"  # as good a fit: {', '.join(source.equally_good)}" if source.equally_good else ""
        lines.append(f"      profile: {inline_yaml(source.profile)}{also}")
        lines.append(f"      weight: {source.weight:g}")
    return "\n".join(lines) + "\n"


def _names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _rating(profile: Any, row: Mapping[str, Any]) -> float:
    try:
        value = float(profile.rate_example(row))
    except Exception:  # a rating is a hint; a broken one counts as no preference
        return 0.0
    return min(max(value, 0.0), 1.0)
