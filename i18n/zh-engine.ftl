# Simplified Chinese: the lens, rollouts, compare and chats commands, and the engine refusals of lens, rollouts, comparisons, the KV view and asking.
