// Imported before onnxruntime-node. onnxruntime 1.30 on Linux starts a telemetry client with its first
// session: it reads /etc/machine-id and /proc/self/cmdline, writes a log to /tmp and may upload. It
// also matches the command line with a recursive std::regex whose depth grows with its length, so a
// long command line (`edgetune predict --head h.head photos/*.jpg`, ~20 kB of paths) overflows the
// worker thread's stack: SIGSEGV. A device reports to its own console, not to anyone else: telemetry
// stays off unless the environment turns it on. Set in the main thread, before any worker starts: the
// native code reads the process environment, which a worker's process.env is only a copy of.

process.env.ORT_DISABLE_TELEMETRY ??= '1';
