/**
 * Removal as real replica processes see it: a replica removed while it was down learns it from
 * its peers as soon as it is back (the first peer that knows tells it after the handshake), and
 * retires instead of campaigning in a configuration that no longer exists; the leader refuses to
 * add a removed id again, in one sentence.
 */
import { describe, expect, it } from "vitest";
import { useCluster } from "./testing-cluster.ts";
import { waitFor } from "./testing.ts";

const cluster = useCluster(3, { spares: 1, traces: false, alsoStart: [4] });

async function change(body: Record<string, unknown>): Promise<{ status: number; body: Record<string, unknown> }> {
  const client = cluster().client(60_000);
  for (;;) {
    const reply = await client.call("POST", "/v1/members", body);
    // Retried while the new replica connects or catches up, as the CLI does.
    if (reply.status === 409 && ["unknown-replica", "not-caught-up"].includes(String(reply.body.code))) {
      await new Promise((resolve) => setTimeout(resolve, 300));
      continue;
    }
    return reply;
  }
}

describe("a replica removed while it was down", () => {
  it("learns it from its peers when it is back, retires, and its id is never added again", async () => {
    expect((await change({ op: "add", id: 4 })).status).toBe(200);
    expect((await change({ op: "promote", id: 4 })).status).toBe(200);
    await cluster().kill(4);
    const removed = await change({ op: "remove", id: 4 });
    expect(removed.status, JSON.stringify(removed.body)).toBe(200);
    await waitFor(
      "the removal in force on replicas 1 to 3",
      async () => {
        const statuses = await Promise.all([1, 2, 3].map((id) => cluster().status(id)));
        return statuses.every((s) => s !== undefined && s.membership.inForce.voters.join(",") === "1,2,3")
          ? true
          : undefined;
      },
      60_000,
    );
    cluster().start(4);
    const status = await waitFor(
      "replica 4 to learn of its removal",
      async () => {
        const s = await cluster().status(4);
        return s?.role === "removed" ? s : undefined;
      },
      60_000,
    );
    expect(status.retired).toMatch(
      /^replica 4 was removed from the cluster: .* \(told by replica [123] when this replica reconnected\)$/,
    );
    const again = await change({ op: "add", id: 4 });
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({
      code: "retired-replica",
      message: expect.stringMatching(
        /^replica 4 was a member and has been removed; a removed id is never added again/,
      ) as unknown,
    });
  }, 180_000);
});
