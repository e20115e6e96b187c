/* One-line structured logs (logfmt) on stderr. */
#ifndef DEBUGINFOD_LITE_LOG_H
#define DEBUGINFOD_LITE_LOG_H

void log_line(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_info(...) log_line("info", __VA_ARGS__)
#define log_warn(...) log_line("warn", __VA_ARGS__)
#define log_error(...) log_line("error", __VA_ARGS__)

#endif
