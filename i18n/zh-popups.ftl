# Simplified Chinese: notices and the popups (rollouts, KV cache, asking about text).
