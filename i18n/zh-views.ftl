# Simplified Chinese: the TUI views (picker, settings, chats, inspector columns, lens, compare).
