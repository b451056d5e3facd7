#!/usr/bin/env python3
"""Writes tests/fixtures/conversations-schema1.sqlite3: a conversations
database of schema 1 (the first form: linear chats, text only), for the
migration test (src/store/tests.rs). The schema is read from
src/store/schema.rs's SCHEMA_1; run from the repository root."""
import os
import sqlite3

PATH = "tests/fixtures/conversations-schema1.sqlite3"
# The schema as the Rust code defines it (the text between its quotes).
SOURCE = open("src/store/schema.rs", encoding="utf-8").read()
SCHEMA_1 = SOURCE.split('pub const SCHEMA_1: &str = "', 1)[1].split('";', 1)[0]

if os.path.exists(PATH):
    os.remove(PATH)
db = sqlite3.connect(PATH)
db.executescript(SCHEMA_1)
db.execute("INSERT INTO conversations VALUES (1, 'Capital of France', 1796000000000, 1796000060000, 'SmolLM2-135M-Instruct')")
for seq, (role, text) in enumerate([
    ("system", "Be brief."),
    ("user", "What is the capital of France?"),
    ("assistant", "Paris."),
    ("user", "And of Italy?"),
    ("assistant", "Rome."),
]):
    db.execute("INSERT INTO messages VALUES (1, ?, ?, ?, ?)", (seq, role, text, 1796000000000 + seq * 1000))
db.execute("INSERT INTO conversations VALUES (2, 'no system prompt', 1796000100000, 1796000100000, NULL)")
db.execute("INSERT INTO messages VALUES (2, 0, 'user', 'hello 中文', 1796000100000)")
db.execute("PRAGMA user_version = 1")
db.commit()
db.close()
print("wrote", PATH)
