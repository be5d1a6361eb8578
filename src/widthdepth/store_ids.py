"""The ids a compact attempt row refers by: model ids, task specs, problem keys and verifier names in
`names`, prompts in `prompts` (one row per prompt_key), sampling settings in `settings` (store_schema's
009_compact). Each distinct value is written once and its id cached for the next attempt.

    ids = Ids(db)
    ids.name("builtin:reasoner@051956e9d7ae")   # -> 1, inserted the first time
    ids.known("mock:")                          # -> None where never stored (reading never writes)
"""

from __future__ import annotations

import sqlite3

from widthdepth.store_schema import pack_key

CACHE_LIMIT = 100_000
"""Values cached per kind; past it the cache starts over (a text run has one prompt per revision)."""


class Ids:
    """Row ids of names, prompts and settings, inserting what is new (INSERT OR IGNORE, then the id).
    Call inside the caller's write transaction, and `forget` when that transaction is rolled back: an id
    cached in it may name a row that is gone."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.names: dict[str, int] = {}
        self.settings_ids: dict[str, int] = {}
        self.prompts: dict[str, tuple[str, int]] = {}
        """prompt_key -> (prompt, id)"""

    def forget(self) -> None:
        self.names.clear()
        self.settings_ids.clear()
        self.prompts.clear()

    def name(self, name: str) -> int:
        found = self.names.get(name)
        if found is None:
            self.db.execute("INSERT OR IGNORE INTO names (name) VALUES (?)", (name,))
            found = self._cache(self.names, name, self.db.execute("SELECT id FROM names WHERE name = ?", (name,)))
        return found

    def known(self, name: str) -> int | None:
        """The id of a stored name, else None; inserts nothing."""
        found = self.names.get(name)
        if found is None:
            row = self.db.execute("SELECT id FROM names WHERE name = ?", (name,)).fetchone()
            found = None if row is None else self._cache(self.names, name, [row])
        return found

    def settings(self, settings: str) -> int:
        found = self.settings_ids.get(settings)
        if found is None:
            self.db.execute("INSERT OR IGNORE INTO settings (json) VALUES (?)", (settings,))
            found = self._cache(self.settings_ids, settings,
                                self.db.execute("SELECT id FROM settings WHERE json = ?", (settings,)))
        return found

    def prompt(self, key: str, prompt: str) -> int:
        """The prompts row of (prompt_key, prompt). prompt_key is the prompt's hash wherever widthdepth
        makes one; should another prompt hold the key already, this one gets a row of its own (`odd_key`)."""
        cached = self.prompts.get(key)
        if cached is not None and cached[0] == prompt:
            return cached[1]
        packed = pack_key(key)
        self.db.execute("INSERT OR IGNORE INTO prompts (key, prompt) VALUES (?, ?)", (packed, prompt))
        found, held = self.db.execute("SELECT id, prompt FROM prompts WHERE key = ?", (packed,)).fetchone()
        if held != prompt:
            return self.db.execute("INSERT INTO prompts (odd_key, prompt) VALUES (?, ?) RETURNING id",
                                   (key, prompt)).fetchall()[0][0]
        if len(self.prompts) >= CACHE_LIMIT:
            self.prompts.clear()
        self.prompts[key] = (prompt, found)
        return found

    @staticmethod
    def _cache(cache: dict[str, int], value: str, rows) -> int:  # noqa: ANN001 - a cursor or a list of rows
        if len(cache) >= CACHE_LIMIT:
            cache.clear()
        found = cache[value] = next(iter(rows))[0]
        return found
