"""The reviewer's keyboard: one fixed key per label for the whole project (pure).

As in Label Studio, Prodigy and doccano, a label keeps its key on every text: the digits
1-9 go to the first nine labels in schema order, then the letters a-z (those of the review
actions left out). A project may set its own keys (the Labels page); labels beyond the pool
have no key and are picked by typing their name instead.
"""
from __future__ import annotations

import string

from .records import SchemaError

# Keys the Review page uses for actions, never given to a label.
RESERVED_KEYS = {"0": "none of these", "s": "skip", "u": "undo"}
KEY_POOL = tuple("123456789") + tuple(c for c in string.ascii_lowercase
                                      if c not in RESERVED_KEYS)


def assign_keys(labels: list[str], saved: dict[str, str] | None = None
                ) -> dict[str, str | None]:
    """label -> its key (or None when the pool runs out), in ``labels`` order.

    ``saved`` keys (from :meth:`Store.label_keys`) are kept when they are valid and not
    already taken; every other label gets the first free key of :data:`KEY_POOL`.
    """
    saved = saved or {}
    keys: dict[str, str | None] = {}
    taken: set[str] = set()
    for name in labels:
        key = (saved.get(name) or "").lower()
        if key in KEY_POOL and key not in taken:
            keys[name] = key
            taken.add(key)
    free = (k for k in KEY_POOL if k not in taken)
    return {name: keys.get(name) or next(free, None) for name in labels}


def check_keys(keys: dict[str, str | None]) -> dict[str, str]:
    """Validate keys a user typed (label -> key, blank for none); returns the cleaned map.

    Raises :class:`SchemaError` naming the first key that is not a digit 1-9 or a letter,
    is reserved for an action, or is given to two labels.
    """
    clean: dict[str, str] = {}
    owner: dict[str, str] = {}
    for name, key in keys.items():
        key = (key or "").strip().lower()
        if not key:
            continue
        if key in RESERVED_KEYS:
            raise SchemaError(f"Key {key!r} of {name!r} is reserved for "
                              f"{RESERVED_KEYS[key]}.")
        if key not in KEY_POOL:
            raise SchemaError(f"Key {key!r} of {name!r} is not allowed: use one digit 1-9 "
                              f"or one letter.")
        if key in owner:
            raise SchemaError(f"Key {key!r} is given to both {owner[key]!r} and {name!r}.")
        owner[key] = name
        clean[name] = key
    return clean
