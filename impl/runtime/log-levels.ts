/**
 * Log levels accepted by `--log-level` (apart from log.ts, which loads pino: the CLI's option parsing needs only
 * these).
 */
export const logLevels = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof logLevels)[number];
