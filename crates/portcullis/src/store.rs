//! SQLite store: active bans, ban history, read positions.
