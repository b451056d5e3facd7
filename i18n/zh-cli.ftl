# Simplified Chinese: the command line (subcommand output, engine and load errors).
