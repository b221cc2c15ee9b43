/**
 * Structured logs: pino, one JSON object per line on stdout, every line tagged with the
 * replica id. `formatLogLine` turns such a line into the short readable form that
 * `paxos-lease cluster start` prints with a per-replica prefix. Logging must never be on
 * the path that decides safety: nothing here blocks the event loop for long or throws.
 */
import { pino, type Logger } from "pino";

export type { Logger };

import type { LogLevel } from "./log-levels.ts";

/** A JSON logger on stdout (or `destination`), tagged with `replica`. Default level: info. */
export function createLogger(
  options: { replica?: number; level?: LogLevel; destination?: NodeJS.WritableStream } = {},
): Logger {
  const base = options.replica === undefined ? {} : { replica: options.replica };
  const config = { level: options.level ?? "info", base, timestamp: pino.stdTimeFunctions.isoTime };
  return options.destination === undefined ? pino(config) : pino(config, options.destination);
}

/** A logger that discards everything (tests). */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}

const levelNames: Record<number, string> = {
  10: "TRACE",
  20: "DEBUG",
  30: "INFO",
  40: "WARN",
  50: "ERROR",
  60: "FATAL",
};
const omitted = new Set(["level", "time", "pid", "hostname", "msg", "replica"]);

/** One pino JSON line as `HH:MM:SS.mmm LEVEL msg key=value ...`; non-JSON lines pass through. */
export function formatLogLine(line: string): string {
  let record: unknown;
  try {
    record = JSON.parse(line);
  } catch {
    return line;
  }
  if (typeof record !== "object" || record === null || Array.isArray(record)) return line;
  const fields = record as Record<string, unknown>;
  const time = typeof fields.time === "string" ? fields.time.slice(11, 23) : "";
  const level = typeof fields.level === "number" ? (levelNames[fields.level] ?? String(fields.level)) : "";
  const message = typeof fields.msg === "string" ? fields.msg : "";
  const extras = Object.entries(fields)
    .filter(([key]) => !omitted.has(key))
    .map(([key, value]) => `${key}=${typeof value === "string" ? value : JSON.stringify(value)}`);
  return [time, level.padEnd(5), message, ...extras].filter((part) => part !== "").join(" ");
}
