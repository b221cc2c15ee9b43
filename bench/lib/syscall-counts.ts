/**
 * System calls and wake-ups of replica processes, counted per thread: the system calls from Linux
 * `perf record -e raw_syscalls:sys_enter -p PID` (a tracepoint: every call, no sampling), the
 * wake-ups from /proc (a thread's voluntary context switches are the times it went to sleep, so
 * the times something had to wake it). With one client, a write's CPU is mostly what each wake-up
 * costs, so these counts say what a change saves better than a noisy CPU figure does.
 */
import fs from "node:fs";

/** x86-64 system call numbers of the calls a replica makes (others are shown by number). */
const names: ReadonlyMap<number, string> = new Map([
  [0, "read"],
  [1, "write"],
  [3, "close"],
  [5, "fstat"],
  [7, "poll"],
  [8, "lseek"],
  [9, "mmap"],
  [10, "mprotect"],
  [11, "munmap"],
  [12, "brk"],
  [13, "rt_sigaction"],
  [14, "rt_sigprocmask"],
  [16, "ioctl"],
  [17, "pread64"],
  [18, "pwrite64"],
  [19, "readv"],
  [20, "writev"],
  [24, "sched_yield"],
  [28, "madvise"],
  [35, "nanosleep"],
  [39, "getpid"],
  [44, "sendto"],
  [45, "recvfrom"],
  [46, "sendmsg"],
  [47, "recvmsg"],
  [72, "fcntl"],
  [74, "fsync"],
  [75, "fdatasync"],
  [186, "gettid"],
  [202, "futex"],
  [228, "clock_gettime"],
  [230, "clock_nanosleep"],
  [232, "epoll_wait"],
  [233, "epoll_ctl"],
  [257, "openat"],
  [262, "newfstatat"],
  [281, "epoll_pwait"],
  [318, "getrandom"],
  [332, "statx"],
  [441, "epoll_pwait2"],
]);

/** Calls by name for each thread id, from `perf script -F tid,trace` of raw_syscalls:sys_enter. */
export function syscallsByThread(script: string): Map<string, Map<string, number>> {
  const out = new Map<string, Map<string, number>>();
  for (const line of script.split("\n")) {
    const m = /^\s*(\d+)\s+NR (\d+) \(([0-9a-f]*),\s*([0-9a-f]*),\s*([0-9a-f]*),\s*([0-9a-f]*)/.exec(line);
    if (m === null) continue;
    const nr = Number(m[2]);
    let name = names.get(nr) ?? `#${nr}`;
    // epoll_pwait(fd, events, max, timeout): a poll that may not sleep is a turn that found work.
    if (nr === 281 || nr === 232) name += m[6] === "0" ? " (no wait)" : " (may sleep)";
    // futex(addr, op): FUTEX_WAIT is 0 and FUTEX_WAKE 1, with FUTEX_PRIVATE_FLAG (128) or not.
    if (nr === 202) {
      const op = parseInt(m[4]!, 16) & 0x7f;
      name += op === 0 || op === 9 ? " wait" : op === 1 || op === 10 ? " wake" : ` op ${op}`;
    }
    let calls = out.get(m[1]!);
    if (calls === undefined) out.set(m[1]!, (calls = new Map<string, number>()));
    calls.set(name, (calls.get(name) ?? 0) + 1);
  }
  return out;
}

/** Voluntary and involuntary context switches of every thread of `pid`, by thread id. */
export function contextSwitches(pid: number): Map<string, { voluntary: number; involuntary: number }> {
  const out = new Map<string, { voluntary: number; involuntary: number }>();
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const status = fs.readFileSync(`/proc/${pid}/task/${tid}/status`, "utf8");
      out.set(tid, {
        voluntary: Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0),
        involuntary: Number(/nonvoluntary_ctxt_switches:\s+(\d+)/.exec(status)?.[1] ?? 0),
      });
    } catch {
      // The thread ended.
    }
  }
  return out;
}
