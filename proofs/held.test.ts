/**
 * What the checker keeps of a value past the steps that need it whole (proofs/held.ts): a long
 * value is held by its digest once checked, and every check that compares it later still tells
 * apart one code unit deep in a 1 MiB value. And what it retains over a run that writes many
 * distinct values, counted: no value kept whole once applied, held forms of bounded length.
 */
import { describe, expect, it } from "vitest";
import { kv, type KvInput, type KvOutput, type KvState } from "../spec/kv.ts";
import type { Ballot, DurableRecord, Value } from "../impl/core/testing/index.ts";
import { ConsensusGhost } from "./consensus-per-slot.ts";
import { digestLarge, heldCharsMin, heldKey, sameHeld } from "./held.ts";
import { ServiceGhost } from "./service-level.ts";
import { checkFailedBy, Tally } from "./violation.ts";
import { VotingGhost } from "./voting-per-slot.ts";

const large = "v".repeat(1024 * 1024);
const oneUnitOff = `${large.slice(0, 700_000)}w${large.slice(700_001)}`;
const b = (round: number, replica: number): Ballot => ({ round, replica });
const put = (value: string, seq = 1, key = "x"): Value<KvInput> => ({
  _tag: "batch",
  commands: [{ clientId: "c1", seq, input: { _tag: "put", key, value } }],
});
const promise = (ballot: Ballot): DurableRecord<KvInput> => ({ _tag: "promise", ballot });
const vote = (slot: number, ballot: Ballot, value: Value<KvInput>): DurableRecord<KvInput> => ({
  _tag: "vote",
  slot,
  ballot,
  value,
});

/** Voting, Consensus and Service ghosts wired as the world checker wires them. */
function ghosts(): {
  voting: VotingGhost<KvInput>;
  consensus: ConsensusGhost<KvInput>;
  service: ServiceGhost<KvState, KvInput, KvOutput>;
} {
  const tally = new Tally();
  const service = new ServiceGhost<KvState, KvInput, KvOutput>(kv, (slot) => consensus.chosen.get(slot)?.value, tally);
  const consensus: ConsensusGhost<KvInput> = new ConsensusGhost<KvInput>(
    tally,
    (slot) => service.chosen(slot),
    () => service.prefix,
  );
  const voting = new VotingGhost<KvInput>([1, 2, 3], tally, (e) => consensus.choose(e));
  for (const a of [0, 1, 2]) voting.flushed(a, promise(b(1, 1)));
  return { voting, consensus, service };
}

describe("held values", () => {
  it("are equal exactly where the values are, one code unit deep in 1 MiB too", () => {
    const v = put(large);
    expect(JSON.stringify(digestLarge(v)).length).toBeLessThan(300);
    expect(digestLarge(digestLarge(v))).toEqual(digestLarge(v));
    expect(heldKey(digestLarge(v))).toBe(heldKey(v));
    expect(heldKey(put(oneUnitOff))).not.toBe(heldKey(v));
    expect(sameHeld(digestLarge(v), v, (x, y) => JSON.stringify(x) === JSON.stringify(y))).toBe(true);
    expect(sameHeld(digestLarge(v), put(oneUnitOff), (x, y) => JSON.stringify(x) === JSON.stringify(y))).toBe(false);
    // A short value is its own held form, and its key its JSON.
    const short = put("x".repeat(heldCharsMin - 100));
    expect(digestLarge(short)).toBe(short);
    expect(heldKey(short)).toBe(JSON.stringify(short));
  });

  it("OneValuePerBallot: a second vote in the ballot one code unit off is caught, the ghost holding a digest", () => {
    const { voting } = ghosts();
    voting.flushed(0, vote(1, b(1, 1), put(large)));
    expect(JSON.stringify(voting.slots.get(1)!.byBallot.get(voting.nat(b(1, 1)))!.value).length).toBeLessThan(300);
    expect(checkFailedBy(() => voting.flushed(1, vote(1, b(1, 1), put(oneUnitOff))))).toBe("OneValuePerBallot");
  });

  it("LearnedIsChosen: a chosen record one code unit off is caught once the value is held", () => {
    const { voting, consensus, service } = ghosts();
    voting.flushed(0, vote(1, b(1, 1), put(large)));
    voting.flushed(1, vote(1, b(1, 1), put(large)));
    expect(service.prefix).toBe(1);
    // Applied: held by its digest from now on.
    expect(consensus.keptWhole).toBe(0);
    expect(JSON.stringify(consensus.chosen.get(1)!.value).length).toBeLessThan(300);
    expect(checkFailedBy(() => consensus.learned(1, 1, put(large)))).toBe("passes");
    expect(checkFailedBy(() => consensus.learned(1, 1, voting.votedValue(0, 1, b(1, 1))))).toBe("passes");
    expect(checkFailedBy(() => consensus.learned(1, 1, put(oneUnitOff)))).toBe("LearnedIsChosen");
  });

  it("keeps a value whole while a gap holds the prefix back, and only until it is applied", () => {
    const { voting, consensus, service } = ghosts();
    voting.flushed(0, vote(2, b(1, 1), put(large, 2)));
    voting.flushed(1, vote(2, b(1, 1), put(large, 2)));
    expect(service.prefix).toBe(0);
    expect(consensus.keptWhole).toBe(1);
    expect(consensus.chosen.get(2)!.value).toEqual(put(large, 2));
    voting.flushed(0, vote(1, b(1, 1), put("a")));
    voting.flushed(1, vote(1, b(1, 1), put("a")));
    expect(service.prefix).toBe(2);
    expect(consensus.keptWhole).toBe(0);
  });

  it("RepliesMatchSpec: an append's output one code unit off is caught against the held output", () => {
    const { voting, service } = ghosts();
    const append: Value<KvInput> = {
      _tag: "batch",
      commands: [{ clientId: "c1", seq: 1, input: { _tag: "append", key: "l", value: large } }],
    };
    voting.flushed(0, vote(1, b(1, 1), append));
    voting.flushed(1, vote(1, b(1, 1), append));
    const held = service.executionOf("c1", 1)!.output;
    expect(JSON.stringify(held).length).toBeLessThan(300);
    const request = { requestId: 1, clientId: "c1", seq: 1, input: append.commands[0]!.input, replica: 0 } as never;
    const reply = (value: string) => () =>
      service.reply({
        _tag: "Reply",
        request,
        result: { _tag: "ok", output: { _tag: "value", value } },
        sameStep: true,
      });
    expect(checkFailedBy(reply(large))).toBe("passes");
    expect(checkFailedBy(reply(oneUnitOff))).toBe("RepliesMatchSpec");
  });

  it("retains no value whole over many distinct long values: held forms of bounded length", () => {
    const { voting, consensus, service } = ghosts();
    const slots = 60;
    for (let slot = 1; slot <= slots; slot++) {
      // Distinct values of 16 KiB each, and 2 KiB appended to a list (of up to 120 KiB) at each slot.
      const value = `${slot}:`.padEnd(16 * 1024, String.fromCharCode(97 + (slot % 26)));
      const v: Value<KvInput> = {
        _tag: "batch",
        commands: [
          { clientId: "c1", seq: 2 * slot - 1, input: { _tag: "put", key: `k${slot}`, value } },
          { clientId: "c1", seq: 2 * slot, input: { _tag: "append", key: "l", value: `${slot},`.padEnd(2048, ".") } },
        ],
      };
      voting.flushed(0, vote(slot, b(1, 1), v));
      voting.flushed(1, vote(slot, b(1, 1), v));
    }
    expect(service.prefix).toBe(slots);
    expect(consensus.keptWhole).toBe(0);
    let chars = 0;
    for (const [, c] of consensus.chosen) chars += JSON.stringify(c.value).length + c.key.length;
    for (const [, sv] of voting.slots)
      for (const [, e] of sv.byBallot) chars += JSON.stringify(e.value).length + e.key.length;
    for (let seq = 1; seq <= 2 * slots; seq++) chars += JSON.stringify(service.executionOf("c1", seq)!.output).length;
    for (let slot = 0; slot <= slots; slot++) chars += service.digestAfter(slot)!.length;
    // Held: a few hundred code units per slot, against 16 KiB (and a list of up to 120 KiB) whole.
    expect(chars).toBeLessThan(slots * 2000);
  });
});
