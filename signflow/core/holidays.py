"""The Swedish calendar of days off, as the law counts time.

*Lagen (1930:173) om beräkning av lagstadgad tid*, 2 §: when the last day of
a period set by law falls on a Saturday, a Sunday or another public holiday,
*midsommarafton*, *julafton* or *nyårsafton*, the period runs to the next
working day.  The public holidays are those of *lagen (1989:253) om allmänna
helgdagar*; the three eves are added here because that act counts them too.
Written out, not taken from a package, so the rule the notice's dates follow is
the one on this page.
"""

from __future__ import annotations

import functools
from datetime import date, timedelta

#: Names of the days off, in Swedish, as the calendar prints them.
FIXED = {
    (1, 1): "Nyårsdagen",
    (1, 6): "Trettondedag jul",
    (5, 1): "Första maj",
    (6, 6): "Sveriges nationaldag",
    (12, 24): "Julafton",
    (12, 25): "Juldagen",
    (12, 26): "Annandag jul",
    (12, 31): "Nyårsafton",
}


def easter_sunday(year: int) -> date:
    """Easter Day of *year* by the Gregorian computus (the anonymous
    Gregorian algorithm of Meeus/Jones/Butcher)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    leap = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * leap) // 451
    month, day = divmod(h + leap - 7 * m + 114, 31)
    return date(year, month, day + 1)


def _saturday_from(start: date) -> date:
    """The first Saturday on or after *start*."""
    return start + timedelta(days=(5 - start.weekday()) % 7)


@functools.cache
def days_off(year: int) -> dict[date, str]:
    """Every public holiday of *year* and the three eves the law counts with
    them, by date (weekends apart from these are not listed)."""
    found = {date(year, month, day): name for (month, day), name in FIXED.items()}
    easter = easter_sunday(year)
    for offset, name in ((-2, "Långfredagen"), (0, "Påskdagen"),
                         (1, "Annandag påsk"), (39, "Kristi himmelsfärdsdag"),
                         (49, "Pingstdagen")):
        found[easter + timedelta(days=offset)] = name
    midsummer = _saturday_from(date(year, 6, 20))
    found[midsummer - timedelta(days=1)] = "Midsommarafton"
    found[midsummer] = "Midsommardagen"
    found[_saturday_from(date(year, 10, 31))] = "Alla helgons dag"
    return found


def holiday_name(day: date) -> str:
    """The name of *day* if it is a day off by :func:`days_off`, else ``""``."""
    return days_off(day.year).get(day, "")


def is_working_day(day: date) -> bool:
    """Monday to Friday and not a day off: a day a period set by law may end on."""
    return day.weekday() < 5 and day not in days_off(day.year)


def next_working_day(day: date) -> date:
    """*day* itself when it is a working day, else the first one after it."""
    while not is_working_day(day):
        day += timedelta(days=1)
    return day
