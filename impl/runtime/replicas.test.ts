/**
 * Real replica processes on loopback, as a story: three start and elect a leader; clients
 * write and read; the leader is killed with SIGKILL while a writer keeps going; writes resume
 * under a new leader and nothing acknowledged is lost or applied twice; the old leader restarts
 * on its data and catches up (on values the others read back from their stores, where executed
 * values rest). The status page shows the leader in headless Chromium, and the
 * merged event traces pair every receipt with its send. Durations are printed, never asserted.
 */
import fs from "node:fs";
import path from "node:path";
import type { Page } from "playwright-core";
import { describe, expect, it } from "vitest";
import { keyPath, newSession, type Session } from "./client.ts";
import { launchChromium } from "./testing-browser.ts";
import { TestCluster, useCluster } from "./testing-cluster.ts";
import { tempDir, waitFor } from "./testing.ts";

const cluster = useCluster(3, { leader: false });
/** Acknowledged writes: key -> value. */
const acknowledged = new Map<string, string>();
let leader = 0;

function note(text: string): void {
  process.stdout.write(`[replicas.test] ${text}\n`);
}

async function put(key: string, value: string, session: Session = newSession()): Promise<boolean> {
  const reply = await cluster().client().call("PUT", keyPath(key), { value }, session);
  if (reply.status === 200) acknowledged.set(key, value);
  return reply.status === 200;
}

async function read(key: string, query = ""): Promise<unknown> {
  const reply = await cluster()
    .client()
    .call("GET", `${keyPath(key)}${query}`);
  expect(reply.status, JSON.stringify(reply.body)).toBe(200);
  return reply.body.value;
}

/** What a status page shows, read in one go (between two separate reads it may render a newer status). */
interface RenderedStatus {
  readonly role: string | null;
  readonly leader: string | null;
  readonly leaderId: string | null;
  /** Per peer id: the first cell's text and the link to its page. */
  readonly peers: Record<string, { readonly name: string; readonly href: string | null }>;
  readonly inForce: string | null;
}

/** Evaluated in the page (JavaScript: the project's TypeScript has no DOM types): its {@link RenderedStatus}. */
const renderedStatus = `(() => {
  const peers = {};
  for (const row of document.querySelectorAll("#peers tr[data-peer]")) {
    const link = row.querySelector("a");
    peers[row.dataset.peer] = { name: row.querySelector("td").textContent, href: link ? link.getAttribute("href") : null };
  }
  const leader = document.querySelector("#leader");
  return {
    role: document.querySelector("#role").dataset.role ?? null,
    leader: leader.textContent,
    leaderId: leader.dataset.leader ?? null,
    peers,
    inForce: document.querySelector("#in-force").textContent,
  };
})()`;

/** The rendering `page` shows now. */
async function rendered(page: Page): Promise<RenderedStatus> {
  return page.evaluate<RenderedStatus>(renderedStatus);
}

describe("three replica processes", () => {
  it("elect a leader and serve writes and reads", async () => {
    try {
      leader = await cluster().waitForLeader(90_000);
      note(`leader is replica ${leader}`);
      const client = cluster().client();
      const started = performance.now();
      for (let i = 0; i < 20; i++) {
        const reply = await client.call("PUT", keyPath(`before/${i}`), { value: `v${i}` }, newSession());
        expect(reply.status).toBe(200);
        acknowledged.set(`before/${i}`, `v${i}`);
      }
      note(
        `20 sequential writes, one client (first one redirected): ${((performance.now() - started) / 20).toFixed(1)} ms per write`,
      );
      const readsStarted = performance.now();
      for (let i = 0; i < 20; i++) expect((await client.call("GET", keyPath(`before/${i}`))).body.value).toBe(`v${i}`);
      note(
        `20 sequential linearizable reads at the leader: ${((performance.now() - readsStarted) / 20).toFixed(1)} ms per read`,
      );
      // A swap of one 1 MiB value for another: a body of two values, replicated and executed whole.
      const [large, larger] = ["x".repeat(1024 * 1024), "y".repeat(1024 * 1024)];
      expect((await client.call("PUT", keyPath("large"), { value: large }, newSession())).status).toBe(200);
      const swap = await client.call(
        "POST",
        keyPath("large"),
        { op: "cas", expected: large, value: larger },
        newSession(),
      );
      expect(swap.status, JSON.stringify(swap.body).slice(0, 200)).toBe(200);
      expect(swap.body.swapped).toBe(true);
      expect((await client.call("GET", keyPath("large"))).body.value === larger).toBe(true);
      acknowledged.set("large", larger);
      // Leadership may move under load (a slow event loop misses a lease renewal): ask again.
      leader = await cluster().waitForLeader(30_000);
      const follower = leader === 1 ? 2 : 1;
      // A stale read on a follower never waits for the leader; it catches up shortly.
      await waitFor(
        "the follower's stale read to show the last write",
        async () => {
          const reply = await cluster()
            .client()
            .call("GET", `${keyPath("before/19")}?consistency=stale`);
          return reply.body.value === "v19" ? true : undefined;
        },
        10_000,
      );
      // It knows a leader (none for a moment while leadership moves).
      await waitFor(
        `replica ${follower} to know a leader`,
        async () => ((await cluster().status(follower))?.leader ?? null) !== null || undefined,
        10_000,
      );
    } catch (error) {
      note(cluster().logs());
      throw error;
    }
  }, 150_000);

  it("keep serving after SIGKILL of the leader: writes resume, nothing acknowledged is lost or doubled", async () => {
    try {
      const counter = "counter";
      const session = newSession();
      let seq = session.seq;
      let appendsAcknowledged = 0;
      let killedAt = 0;
      let firstAfterKill = 0;
      for (let i = 0; i < 30; i++) {
        if (i === 10) {
          leader = await cluster().waitForLeader(30_000);
          await cluster().kill(leader, "SIGKILL");
          killedAt = performance.now();
          note(`killed leader ${leader}`);
        }
        // Appends in one session: a retry after an unknown outcome must not append twice.
        const reply = await cluster()
          .client(45_000)
          .call("POST", keyPath(counter), { op: "append", value: "x" }, { clientId: session.clientId, seq: seq++ });
        expect(reply.status, JSON.stringify(reply.body)).toBe(200);
        appendsAcknowledged += 1;
        if (i === 10) firstAfterKill = performance.now();
        expect(await put(`during/${i}`, `w${i}`)).toBe(true);
      }
      note(
        `first write after the kill completed after ${(firstAfterKill - killedAt).toFixed(0)} ms (failover plus client retries)`,
      );
      // The leader's metrics, read while it still leads (under load leadership may move again).
      const { newLeader, sample } = await waitFor(
        "the metrics of a replica that leads",
        async () => {
          const current = await cluster().waitForLeader(30_000);
          const metrics = await fetch(`${cluster().endpoint(current)}/metrics`, {
            headers: cluster().authHeaders("read"),
          }).then((r) => r.text());
          const value = (name: string): number =>
            Number(new RegExp(`^${name}\\{[^}]*\\} (\\S+)$`, "m").exec(metrics)?.[1] ?? Number.NaN);
          return value("paxos_lease_is_leader") === 1 ? { newLeader: current, sample: value } : undefined;
        },
        60_000,
        100,
      );
      expect(newLeader).not.toBe(leader);
      note(`new leader is replica ${newLeader}`);
      expect(sample("paxos_lease_leaderships_total")).toBeGreaterThanOrEqual(1);
      expect(sample("paxos_lease_commits_total")).toBeGreaterThan(0);
      expect(sample("paxos_lease_fsync_seconds_count")).toBeGreaterThan(0);
      // A leader that holds its lease has had heartbeats answered: each answer's round trip is timed.
      expect(sample("paxos_lease_heartbeat_round_trip_seconds_count")).toBeGreaterThan(0);
      expect(sample("paxos_lease_heartbeat_hold_seconds_count")).toBeGreaterThan(0);
      expect(await read(counter)).toBe("x".repeat(appendsAcknowledged));
      for (const [key, value] of acknowledged) expect(await read(key), key).toBe(value);
    } catch (error) {
      note(cluster().logs());
      throw error;
    }
  }, 180_000);

  it("restart the killed replica on its data; it catches up to the same slot and state digest", async () => {
    try {
      const restarted = leader;
      cluster().start(restarted);
      await put("after/restart", "caught-up");
      // The restarted replica may even become leader again; either way all three converge.
      const slots = await waitFor(
        "every replica, the restarted one included, to execute the same slots",
        async () => {
          const statuses = await Promise.all(cluster().members.map((m) => cluster().status(m.id)));
          if (statuses.some((s) => s === undefined) || !statuses.some((s) => s!.role === "leader")) return undefined;
          const executed = new Set(statuses.map((s) => s!.executedSlot));
          // Equal executed slots must mean equal executed states: the digests agree too.
          const digests = new Set(statuses.map((s) => s!.digest));
          return executed.size === 1 && digests.size === 1 && statuses[0]!.executedSlot > 0
            ? statuses[0]!.executedSlot
            : undefined;
        },
        60_000,
        200,
      );
      note(`replica ${restarted} caught up to slot ${slots}`);
      // It caught up on values the others keep only at rest: they read them back from their stores.
      const fromDisk = await Promise.all(
        cluster().members.map(async (m) => {
          const metrics = await fetch(`${cluster().endpoint(m.id)}/metrics`, {
            headers: cluster().authHeaders("read"),
          }).then((r) => r.text());
          return Number(/^paxos_lease_values_read_from_disk_total(?:\{[^}]*\})? (\S+)$/m.exec(metrics)?.[1] ?? 0);
        }),
      );
      note(`values read back from disk for peers: ${fromDisk.join(", ")}`);
      expect(fromDisk.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
      const stale = await cluster()
        .client()
        .call("GET", `${keyPath("after/restart")}?consistency=stale`);
      expect(stale.status).toBe(200);
    } catch (error) {
      note(cluster().logs());
      throw error;
    }
  }, 120_000);

  it("shows the leader on the status page in headless Chromium", async (context) => {
    const browser = await launchChromium((reason) => context.skip(reason));
    if (browser === null) return;
    const profile = tempDir("chromium");
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
      // Without a token the page shows no status, only the form that asks for one.
      await page.goto(`${cluster().endpoint(1)}/`);
      await page.locator("#login").waitFor({ state: "visible", timeout: 20_000 });
      expect(await page.locator("#leader").textContent()).toBe("unknown");
      // Under load the leader may move while a page loads: follow it, and read each page in one
      // rendering (it re-renders every 500 ms from a fresh status).
      let viewed = 0;
      const { leader, view } = await waitFor(
        "a follower's page to show the leader all replicas agree on",
        async () => {
          const current = await cluster().waitForLeader(30_000);
          const follower = current === 1 ? 2 : 1;
          if (follower !== viewed) {
            // With a read token in the address (a fragment: never sent to the server) it shows everything.
            await page.goto(`${cluster().endpoint(follower)}/#token=${cluster().token("read")}`);
            // The page takes the token out of its address (a fragment change does not reload it).
            await page.waitForFunction('location.hash === ""', undefined, { timeout: 10_000 });
            viewed = follower;
          }
          const shown = await rendered(page);
          return shown.role === "follower" && shown.leaderId === String(current)
            ? { leader: current, view: shown }
            : undefined;
        },
        60_000,
        250,
      );
      expect(view.leader).toBe(`replica ${leader}`);
      // The link to a peer's page uses this page's scheme (https under TLS).
      expect(view.peers[leader]).toEqual({
        name: `replica ${leader} (leader)`,
        href: `${cluster().endpoint(leader)}/`,
      });
      expect(view.inForce).toBe("In force: voters 1,2,3 (chosen at slot 0, governs from slot 1); this replica: voter");
      const shot = path.join(profile, "status-page.png");
      await page.screenshot({ path: shot, fullPage: true });
      expect(fs.statSync(shot).size).toBeGreaterThan(10_000);
      note(
        `status page screenshot: ${shot}${process.env.PAXOS_LEASE_KEEP_TEST_DATA === "1" ? "" : " (removed; set PAXOS_LEASE_KEEP_TEST_DATA=1 to keep it)"}`,
      );
      const leaderPage = await browser.newPage();
      let viewedLeader = 0;
      const own = await waitFor(
        "the leader's page to show it leads",
        async () => {
          const current = await cluster().waitForLeader(30_000);
          if (current !== viewedLeader) {
            await leaderPage.goto(`${cluster().endpoint(current)}/`);
            // A token typed into the form works as well.
            await leaderPage.locator("#login").waitFor({ state: "visible", timeout: 20_000 });
            await leaderPage.locator("#token").fill(cluster().token("read"));
            await leaderPage.locator("#login button").click();
            viewedLeader = current;
          }
          const shown = await rendered(leaderPage);
          return shown.role === "leader" ? shown : undefined;
        },
        60_000,
        250,
      );
      expect(own.leader).toBe(`replica ${viewedLeader} (this one)`);
    } finally {
      await browser.close();
      if (process.env.PAXOS_LEASE_KEEP_TEST_DATA !== "1") fs.rmSync(profile, { recursive: true, force: true });
    }
  }, 150_000);

  it("stop cleanly on SIGTERM, leaving traces (mode 0600) in which every receipt pairs with a send of the same message", async () => {
    // Stop first, so that no receipt is read whose send was traced after its sender's file was read.
    for (const member of cluster().members) {
      const exit = member.exit;
      await cluster().kill(member.id, "SIGTERM");
      expect(await exit).toBe(0);
    }
    interface Line {
      seq: number;
      replica: number;
      type: string;
      incarnation?: string;
      clockRate?: number;
      clockOffsetMs?: number;
      event?: Record<string, unknown>;
      effect?: Record<string, unknown>;
    }
    const sends = new Map<string, string>();
    const receipts: { key: string; message: string }[] = [];
    for (const member of cluster().members) {
      // Traces hold the clients' keys and values: readable by the replica's user alone.
      expect(fs.statSync(cluster().traceFile(member.id)).mode & 0o777).toBe(0o600);
      const lines = fs
        .readFileSync(cluster().traceFile(member.id), "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as Line);
      let incarnation = "";
      let previousSeq = -1;
      for (const line of lines) {
        expect(line.replica).toBe(member.id);
        if (line.type === "start") {
          incarnation = line.incarnation!;
          expect(line.seq).toBe(0);
          // An unskewed clock: readings are the machine's monotonic clock itself.
          expect([line.clockRate, line.clockOffsetMs]).toEqual([1, 0]);
        } else expect(line.seq).toBe(previousSeq + 1);
        previousSeq = line.seq;
        if (line.effect?._tag === "Send")
          sends.set(
            `${incarnation}/${String(line.effect.wireId)}->${String(line.effect.to)}`,
            JSON.stringify(line.effect.message),
          );
        if (line.event?._tag === "Receive") {
          receipts.push({
            key: `${String(line.event.senderIncarnation)}/${String(line.event.wireId)}->${member.id}`,
            message: JSON.stringify(line.event.message),
          });
        }
      }
    }
    expect(receipts.length).toBeGreaterThan(100);
    // A receipt without a send would be a message from nowhere; a changed body, a corrupted one.
    for (const receipt of receipts) expect(sends.get(receipt.key), receipt.key).toBe(receipt.message);
  });
});

describe("a replica's data directory", () => {
  it("is refused at start when damaged, naming the file, and the process exits with code 3", async () => {
    const probe = await TestCluster.create(1);
    try {
      const run = async (): Promise<{ code: number | null; output: string }> => {
        probe.start(1);
        const member = probe.member(1);
        const code = await waitFor("the replica to exit", () => member.exit, 5000).then((exit) => exit);
        return { code, output: member.output.join("\n") };
      };
      // start() passes --init only when the directory is missing: create it empty, then damage it.
      fs.mkdirSync(probe.dataDir(1), { recursive: true });
      fs.writeFileSync(path.join(probe.dataDir(1), "replica.sqlite"), "garbage ".repeat(1000));
      const damaged = await run();
      expect(damaged.code).toBe(3);
      expect(damaged.output).toMatch(/refusing to start: damaged data: .*replica\.sqlite: /);
      expect(await probe.status(1)).toBeUndefined();
    } finally {
      await probe.close();
    }
  }, 60_000);
});
