/**
 * Interaction scenarios with golden output (impl/core/testdata/*.txt), in the style of
 * etcd-io/raft's datadriven tests: each file is a story (start, campaign, deliver, tick, crash,
 * restart) and cites the rule it checks. `UPDATE_GOLDEN=1 npx vitest run impl/core` rewrites the
 * files from the actual output; review the diff before committing it.
 */
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runScript } from "./testing/script.ts";

const dir = join(import.meta.dirname, "testdata");
const files = readdirSync(dir)
  .filter((f) => f.endsWith(".txt"))
  .sort();

describe("scenarios (impl/core/testdata)", () => {
  it("has the scenarios docs/impl.md walks through", () => {
    for (const name of [
      "normal",
      "duelling-candidates",
      "leader-change-mid-phase2",
      "lease-expiry",
      "lease-read",
      "read-without-lease",
      "restart-during-lease",
      "grant-in-force",
      "duplicate-request",
      "divergence-alarm",
      // Snapshots, truncation, state transfer, reconfiguration.
      "snapshot-truncation",
      "state-transfer",
      "transfer-stale",
      "truncated-promise",
      "reconfig-add-replica",
      "reconfig-remove-follower",
      "reconfig-remove-leader",
      "reconfig-replace",
      "lease-reconfiguration",
      // leases across membership changes
      "lease-read-after-replace",
      "lease-read-after-replace-snapshot",
      "reconfig-removed-voter-campaigns",
      "reconfig-removed-replica-restarts",
      "reconfig-removed-replica-restarts-handed-over",
      "reconfig-change-at-new-leader",
      "reconfig-change-behind-own-change",
      "reconfig-sole-voter-replaced-isolated",
    ]) {
      expect(files).toContain(`${name}.txt`);
    }
  });

  for (const file of files) {
    it(file, () => {
      const path = join(dir, file);
      const text = readFileSync(path, "utf8");
      const actual = runScript(text);
      if (process.env.UPDATE_GOLDEN === "1") {
        writeFileSync(path, actual);
        return;
      }
      expect(actual).toBe(text);
    });
  }
});
