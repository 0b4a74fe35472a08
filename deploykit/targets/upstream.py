"""Two slots (issue 16): the proxy's upstream file, which ``manage.py redeploy`` rewrites to switch slots.

The site (nginx, Apache, Caddy) includes the file; the file holds only what
differs between the slots (where the servers listen) and names its slot on
its first line, so the file on disk is the one source of truth for which slot
is live. Each proxy target renders it with its own template from the plan as
that slot runs it (:meth:`Plan.for_slot`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from deploykit.plan import Plan
from deploykit.rendering import render
from deploykit.targets.base import RenderedFile

if TYPE_CHECKING:
    from deploykit.targets.base import Target

#: The first line of every upstream file: the live slot's name follows.
SLOT_MARKER = "# deploykit slot: "


def live_slot(text: str) -> str | None:
    """The slot an upstream file points to (its first line), or None when it names none."""
    first = text.split("\n", 1)[0]
    return first[len(SLOT_MARKER) :].strip() or None if first.startswith(SLOT_MARKER) else None


class SlotUpstream:
    """What a proxy target adds for two slots: the upstream file, per slot, and the check of either."""

    #: The upstream file's template; its context is the target's own over the slot's plan, plus ``slot``.
    upstream_template: ClassVar[str]
    plan: Plan

    def files(self) -> list[RenderedFile]:
        return [*super().files(), *self.upstream_rendered()]  # type: ignore[misc]

    def check(self, files: list[RenderedFile], workdir: Path) -> None:
        if self.plan.slots:
            self.check_slots(files[0].content, workdir)
        else:
            self.validate(files[0].content, workdir)

    def upstream_quote(self, path: str) -> str:
        """The file's path as the proxy's config quotes it."""
        raise NotImplementedError

    def validate(self, content: str, workdir: Path) -> None:
        raise NotImplementedError

    def _validate(self, content: str, workdir: Path) -> None:
        raise NotImplementedError

    def context(self) -> dict[str, object]:
        raise NotImplementedError

    def slot_target(self, slot: str) -> SlotUpstream:
        return type(self)(self.plan.for_slot(slot))  # type: ignore[call-arg]

    def upstream_text(self, slot: str) -> str:
        return render(self.upstream_template, {**self.slot_target(slot).context(), "slot": slot})

    def upstream_rendered(self) -> list[RenderedFile]:
        """The upstream file as installed first: the first slot is live."""
        if not self.plan.slots or self.plan.upstream_file is None:
            return []
        return [RenderedFile(Path(self.plan.upstream_file).name, self.upstream_text(self.plan.slots[0].name))]

    def with_upstream(self, content: str, upstream: str, workdir: Path) -> str:
        """``content`` including ``upstream`` written in ``workdir`` instead of the installed path."""
        assert self.plan.upstream_file is not None
        path = workdir / Path(self.plan.upstream_file).name
        path.write_text(upstream, encoding="utf-8")
        return content.replace(self.upstream_quote(self.plan.upstream_file), self.upstream_quote(str(path)))

    def validate_with_upstream(self, content: str, upstream: str, workdir: Path) -> None:
        """The site with ``upstream`` in place of the installed upstream file, through the proxy's own test."""
        self._validate(self.with_upstream(content, upstream, workdir), workdir)

    def check_slots(self, site: str, workdir: Path) -> None:
        """The site with each slot's upstream file, through the proxy's own test."""
        for slot in self.plan.slots:
            where = workdir / f"slot-{slot.name}"
            where.mkdir(exist_ok=True)
            self.validate_with_upstream(site, self.upstream_text(slot.name), where)


def proxy_target(plan: Plan) -> Target:
    from deploykit.targets import TARGETS

    return TARGETS[plan.site.proxy](plan)


def upstream_content(plan: Plan, slot: str) -> str:
    """The upstream file that makes ``slot`` live, for the plan's proxy."""
    target = proxy_target(plan)
    assert isinstance(target, SlotUpstream)
    return target.upstream_text(slot)


def validate_upstream(plan: Plan, upstream: str, workdir: Path) -> None:
    """The plan's site with ``upstream`` as its upstream file, through the proxy's own test (ValidationFailed)."""
    target = proxy_target(plan)
    assert isinstance(target, SlotUpstream)
    target.validate_with_upstream(target.render(), upstream, workdir)
