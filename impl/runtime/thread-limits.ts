/**
 * The young generation of a replica's helper threads (the storage thread, the heartbeat relay),
 * smaller than the main thread's. Each thread is an isolate with a heap of its own, and every one
 * took the main thread's semi-spaces (`--max-semi-space-size=4`, program.ts): 8 MiB of young
 * generation for a thread that allocates a few records a turn. At a replica's peak in a burst of
 * 1 MiB PUTs the storage thread's young generation held 8.4 MB, 2 to 3 of it in use.
 *
 * A worker's `resourceLimits.maxYoungGenerationSizeMb` sets its semi-spaces only where no
 * `--max-semi-space-size` flag is set (V8 prefers the flag). The flag is read once per isolate,
 * when its heap is configured, so clearing it after the main thread's heap exists changes nothing
 * there and lets each later worker's limit decide. Every worker a replica starts after this must
 * therefore pass a young generation of its own: without one V8's default (up to 48 MiB) applies.
 */
import v8 from "node:v8";
import type { ResourceLimits } from "node:worker_threads";

/**
 * The young generation of a helper thread, in MiB: two semi-spaces of 1 MiB (V8 sizes a young
 * generation as three semi-spaces). Large values (a 1 MiB record read back) go to the large-object
 * space, never through the semi-spaces.
 */
export const helperYoungGenerationMb = 3;

/** The resource limits of a replica's helper thread, made effective (see the file's comment). */
export function helperThreadLimits(): ResourceLimits {
  v8.setFlagsFromString("--max-semi-space-size=0");
  return { maxYoungGenerationSizeMb: helperYoungGenerationMb };
}
