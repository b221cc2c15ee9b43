/**
 * Broken variants of single-decree Paxos (spec/paxos.ts, in its compact encoding), each
 * dropping one enabling condition of Paxos.tla. They live with the other broken variants in
 * refinement-tests/mutants/, never in spec/, and spec-variants.test.ts requires the explorer to
 * catch each with the named check and the exact shortest trace: a check that cannot fail is a
 * defect.
 */
import { CompactPaxos, type CompactPaxosState } from "../../../spec/compact/paxos.ts";

/**
 * Phase2a(b, v) without the value condition (the heart of Paxos): the leader still waits
 * for 1b messages from a quorum but proposes any value, ignoring the votes they report.
 */
export class Phase2aIgnoringVotes extends CompactPaxos {
  override readonly name = "Paxos with Phase2a ignoring reported votes";
  override Phase2aWitnesses(s: CompactPaxosState, b: number): number {
    if (this.sent2a(s, b)) return 0;
    return this.constants.quorums.filter((Q) => Q.every((a) => this.oneBs(s, a, b) !== 0)).length;
  }
}

/** Phase2a(b, v) without its first conjunct: a second 2a message in the same ballot. */
export class Phase2aTwiceInBallot extends CompactPaxos {
  override readonly name = "Paxos with two 2a messages per ballot";
  override Phase2aWitnesses(s: CompactPaxosState, b: number, v: number): number {
    let witnesses = 0;
    for (const Q of this.constants.quorums) witnesses += this.quorumWitnesses(s, Q, b, v);
    return witnesses;
  }
}

/** Phase1b(a) without m.bal > maxBal[a]: an acceptor answers (and lowers maxBal to) an old ballot. */
export class Phase1bIgnoringMaxBal extends CompactPaxos {
  override readonly name = "Paxos with Phase1b ignoring maxBal";
  override Phase1bEnabled(s: CompactPaxosState, _a: number, bal: number): boolean {
    return this.sent(s, this.msg1a(bal));
  }
}

/** Phase2b(a) without m.bal >= maxBal[a]: an acceptor votes in a ballot it promised to skip. */
export class Phase2bIgnoringMaxBal extends CompactPaxos {
  override readonly name = "Paxos with Phase2b ignoring maxBal";
  override Phase2bEnabled(s: CompactPaxosState, _a: number, bal: number, val: number): boolean {
    return this.sent(s, this.msg2a(bal, val));
  }
}
