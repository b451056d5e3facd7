# Simplified Chinese: bench, paths, info --tensors / --server, quantize and fetch-demos progress, crash reports.
