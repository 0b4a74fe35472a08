"""Timer schedules: cron's five fields, which Kubernetes CronJob takes as they are and systemd as OnCalendar=.

One syntax for both, so a schedule cannot mean one thing in a CronJob and another in a .timer: the plan
keeps the cron form and its OnCalendar= translation, both in UTC (the CronJob's ``timeZone`` and the
calendar's ``UTC``), whatever the machine's own time zone.
"""

from __future__ import annotations

import re

from deploykit.exceptions import SpecError

#: cron's shortcuts that systemd also names (systemd.time(7)); @reboot is not a schedule.
SHORTCUTS = {
    "hourly": "0 * * * *",
    "daily": "0 0 * * *",
    "midnight": "0 0 * * *",
    "weekly": "0 0 * * 0",
    "monthly": "0 0 1 * *",
    "yearly": "0 0 1 1 *",
    "annually": "0 0 1 1 *",
}
#: (name, lowest, highest) of cron's fields, in order.
FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))
DAYS = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_DAY_NAMES = {name.lower(): index for index, name in enumerate(DAYS[:7])}
_ITEM_RE = re.compile(r"^(\*|[0-9a-z]+(?:-[0-9a-z]+)?)(?:/([0-9]+))?$")


def _number(text: str, field: int, setting: str, schedule: str) -> int:
    name, low, high = FIELDS[field]
    if field == 4 and text in _DAY_NAMES:
        return _DAY_NAMES[text]
    if not text.isdigit() or not low <= int(text) <= high:
        raise SpecError(setting, schedule, f"the {name} field takes {low}-{high}, not {text!r}")
    return int(text)


def _calendar_field(text: str, field: int, setting: str, schedule: str) -> str:
    """One cron field as systemd writes it: ranges a..b, steps /n, lists; days of the week by name."""
    parts = []
    for item in text.split(","):
        match = _ITEM_RE.fullmatch(item)
        if match is None:
            raise SpecError(setting, schedule, f"cannot read {item!r} in the {FIELDS[field][0]} field")
        span, step = match.group(1), match.group(2)
        if step is not None and int(step) == 0:
            raise SpecError(setting, schedule, f"a step of 0 in the {FIELDS[field][0]} field")
        if field == 4:
            if step is not None:
                raise SpecError(setting, schedule, "steps in the day-of-week field have no calendar form: list days")
            if span == "*":
                return ""
            first, _, last = span.partition("-")
            days = [DAYS[_number(first, 4, setting, schedule)]]
            if last:
                days.append(DAYS[_number(last, 4, setting, schedule)])
            parts.append("..".join(days))
            continue
        if span == "*":
            start = FIELDS[field][1]
            parts.append("*" if step is None else f"{start:02d}/{step}")
            continue
        first, _, last = span.partition("-")
        low = _number(first, field, setting, schedule)
        text_range = f"{low:02d}"
        if last:
            high = _number(last, field, setting, schedule)
            if high < low:
                raise SpecError(setting, schedule, f"the range {span} in the {FIELDS[field][0]} field runs backwards")
            text_range += f"..{high:02d}"
        parts.append(text_range + ("" if step is None else f"/{step}"))
    return ",".join(parts)


def parse(value: object, setting: str) -> tuple[str, str]:
    """(the cron form, systemd's OnCalendar= form) of a schedule: cron's five fields or a shortcut (daily)."""
    if not isinstance(value, str) or not value.strip():
        raise SpecError(setting, value, "must be a cron schedule ('30 3 * * *') or hourly, daily, weekly, monthly")
    text = value.strip().lower()
    cron = SHORTCUTS.get(text.removeprefix("@"), text)
    fields = cron.split()
    if len(fields) != 5:
        raise SpecError(setting, value, "must have cron's five fields: minute hour day-of-month month day-of-week")
    minute, hour, dom, month, dow = (_calendar_field(f, i, setting, value) for i, f in enumerate(fields))
    if fields[2] != "*" and fields[4] != "*":
        # cron runs when either matches, systemd when both do: the two would disagree.
        raise SpecError(setting, value, "restrict the day of the month or the day of the week, not both")
    calendar = f"*-{month}-{dom} {hour}:{minute}:00 UTC"
    return " ".join(fields), f"{dow} {calendar}" if dow else calendar
