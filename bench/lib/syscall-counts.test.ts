import { describe, expect, it } from "vitest";
import { syscallsByThread } from "./syscall-counts.ts";

describe("syscallsByThread", () => {
  // `perf script -F tid,trace` of raw_syscalls:sys_enter: the thread, the call's number, its arguments.
  const script = [
    "   10 NR 281 (e, 7ffc, 400, ffffffffffffffff, 0, 8)",
    "   10 NR 281 (e, 7ffc, 400, 0, 0, 8)",
    "   10 NR 1 (12, 7ffc, 1, 1b6, 0, 0)",
    "   10 NR 202 (7f00, 81, 1, 0, 0, 0)",
    "   11 NR 202 (7f08, 80, 5, 0, 0, 0)",
    "   11 NR 75 (15, 0, 0, 0, 0, 0)",
    "   11 NR 18 (15, 7f10, 1000, 2000, 0, 0)",
    "   11 NR 18 (15, 7f10, 18, 3000, 0, 0)",
    "   11 NR 999 (0, 0, 0, 0, 0, 0)",
    "not a sample",
  ].join("\n");

  it("counts each thread's calls by name, telling polls that may sleep and futex waits from wakes", () => {
    const calls = syscallsByThread(script);
    expect(Object.fromEntries(calls.get("10")!)).toEqual({
      "epoll_pwait (may sleep)": 1,
      "epoll_pwait (no wait)": 1,
      write: 1,
      "futex wake": 1,
    });
    expect(Object.fromEntries(calls.get("11")!)).toEqual({
      "futex wait": 1,
      fdatasync: 1,
      pwrite64: 2,
      "#999": 1,
    });
    expect(calls.size).toBe(2);
  });
});
