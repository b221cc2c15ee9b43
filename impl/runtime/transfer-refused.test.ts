/**
 * A refused state transfer is said, never dropped in silence: a driver stepping the real core
 * meets a chunk that is not JSON, then a whole transfer whose bytes are not those of their
 * digest; each gives one warn line naming the peer, the snapshot, the check and the byte (and
 * that catch-up starts over), and a count by check; neither persists anything, and the good
 * transfer after them installs.
 */
import { Writable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { kv, type KvInput, type KvOutput } from "../../spec/kv.ts";
import { parseConfig } from "../core/index.ts";
import { snapshotChunk, transferConfig, transferEnds } from "../core/testing/cluster.ts";
import { initialState } from "../core/state.ts";
import { monotonicClock } from "./clock.ts";
import { kvStep, type KvMessage, type KvRecord, type KvReplicaState, type KvStoredMessage } from "./core-adapter.ts";
import { Driver, type DurableLog } from "./driver.ts";
import { createLogger } from "./log.ts";
import { ReplicaMetrics } from "./metrics.ts";
import { RecentEvents } from "./status.ts";
import { reportTransferRefused } from "./transfer-refused.ts";
import { waitFor } from "./testing.ts";
import type { CoreView } from "./view.ts";

const drivers: { stop(): void }[] = [];
afterEach(() => {
  for (const d of drivers.splice(0)) d.stop();
});

/** A leader's snapshot after a few writes, taken in another cluster than the follower's. */
const leaderSnapshot = () => transferEnds().snapshot;

/** Replica 2 of a fresh cluster behind a driver, with what it logs, counts and persists. */
function follower() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split("\n")) if (line !== "") lines.push(JSON.parse(line) as never);
      done();
    },
  });
  const log = createLogger({ replica: 2, destination });
  const metrics = new ReplicaMetrics(
    2,
    { events: () => 0, requests: () => 0, droppedEvents: () => 0, outboundBytes: () => new Map() },
    () => ({}) as CoreView,
    () => 0,
  );
  const events = new RecentEvents(() => 0);
  const persisted: KvRecord[] = [];
  const store: DurableLog<KvRecord> = {
    recordCount: 0,
    append: (records) => void persisted.push(...records),
  };
  const state: KvReplicaState = initialState(parseConfig({ ...transferConfig, members: [1, 2, 3], self: 2 }), kv);
  const driver = new Driver<KvReplicaState, KvMessage, KvRecord, KvInput, KvOutput, KvStoredMessage>({
    step: kvStep,
    state,
    log: store,
    clock: monotonicClock(),
    send: () => true,
    onAlarm: () => undefined,
    onFatal: (error) => {
      throw error;
    },
    onTransferRefused: (refusal) => reportTransferRefused(refusal, { log, metrics, events }),
  });
  drivers.push(driver);
  driver.start([]);
  const refused = async (check: string): Promise<number> => {
    const metric = await metrics.registry.getSingleMetric("paxos_lease_transfers_refused_total")!.get();
    return metric.values.find((v) => v.labels.check === check)?.value ?? Number.NaN;
  };
  return { driver, lines, events, persisted, refused };
}

describe("a refused state transfer", () => {
  it("logs a warn line and counts it by check, for a malformed chunk and for a wrong digest, and loses nothing", async () => {
    const snapshot = leaderSnapshot();
    const data = snapshot.data;
    const { driver, lines, events, persisted, refused } = follower();
    const chunk = (bytes: string, offset: number, size: number) => snapshotChunk(snapshot, bytes, offset, size);
    let wire = 1;
    const warnings = () => lines.filter((l) => l.level === 40);
    const before = persisted.length;
    expect(await refused("json")).toBe(0);

    // Malformed: a brace where a key's quote belongs, in the second chunk of two.
    const at = data.indexOf('"entries"');
    const broken = `${data.slice(0, at)}}${data.slice(at + 1)}`;
    const half = Math.floor(at / 2);
    driver.receive(1, chunk(broken, 0, half), wire++);
    driver.receive(1, chunk(broken, half, broken.length), wire++);
    await waitFor("the malformed transfer's warning", () => (warnings().length === 1 ? true : undefined), 5000, 10);
    expect(warnings()[0]).toMatchObject({ replica: 2, peer: 1, slot: snapshot.slot, digest: snapshot.digest });
    expect(warnings()[0]).toMatchObject({ check: "json", offset: at });
    expect(warnings()[0]!.msg).toMatch(
      new RegExp(
        `^state transfer of snapshot ${snapshot.slot} .* from replica 1 refused at byte ${at} \\(check json\\): not JSON at byte ${at}: .*; nothing installed, catch-up starts over$`,
      ),
    );
    expect(await refused("json")).toBe(1);
    expect(driver.state.learner.transfer).toBeNull();

    // A byte changed, still JSON: refused by the bytes' digest once the last byte is in.
    const changed = data.replace('"k3"', '"k9"');
    driver.receive(1, chunk(changed, 0, changed.length), wire++);
    await waitFor("the wrong digest's warning", () => (warnings().length === 2 ? true : undefined), 5000, 10);
    expect(warnings()[1]).toMatchObject({ peer: 1, slot: snapshot.slot, check: "contentDigest", offset: data.length });
    expect(warnings()[1]!.reason).toMatch(/^content digest \w+ is not the claimed \w+$/);
    expect(await refused("contentDigest")).toBe(1);
    expect(await refused("state")).toBe(0);
    expect(events.list().filter((e) => e.level === "warn")).toHaveLength(2);

    // Nothing of either was persisted or taken: the replica is where it was, and the next good transfer installs.
    expect(persisted.slice(before).filter((r) => r._tag === "snapshot")).toEqual([]);
    expect(driver.state.learner.executedUpTo).toBe(0);
    driver.receive(1, chunk(data, 0, data.length), wire++);
    await waitFor(
      "the good transfer installed",
      () => (driver.state.learner.executedUpTo === snapshot.slot ? true : undefined),
      5000,
      10,
    );
    expect(persisted.filter((r) => r._tag === "snapshot")).toHaveLength(1);
    expect(warnings()).toHaveLength(2);
  });
});
