/**
 * What clients may observe of the whole highly available service: one state machine that
 * executes each client request exactly once, in one total order. This is the top of the
 * refinement chain (see DESIGN.md): the replicated log, executed in slot order, must look to
 * every client like this machine.
 *
 * Exactly-once rests on the session table: clientId -> (last sequence number executed, its
 * output). A client numbers its requests 1, 2, 3, ... and has at most one outstanding. A
 * request with a new (higher) number is executed; a retry of the last one gets the cached
 * output without executing again; an older one is refused as stale, because its output is no
 * longer kept. The same machine, with the application's read-only inputs, is the sequential
 * model the linearizability checker replays histories against.
 *
 * Pure: no clock, no randomness, no I/O.
 */
import { Schema } from "effect";
import { emptyPersistentMap, pmForEach, pmGet, pmSet, type PersistentMap } from "./persistent-map.ts";
import type { Application, Applied, StateMachine } from "./state-machine.ts";

/** A client's identity: a non-empty printable string of at most 128 characters. */
export const ClientId = Schema.String.pipe(
  Schema.minLength(1),
  Schema.maxLength(128),
  Schema.pattern(/^[\x21-\x7e]+$/),
);
/** A client's request number: a positive safe integer. */
export const Seq = Schema.Int.pipe(Schema.positive(), Schema.lessThanOrEqualTo(Number.MAX_SAFE_INTEGER));

/** A request as the service sees it. */
export interface Request<I> {
  readonly clientId: string;
  readonly seq: number;
  readonly input: I;
}

/** What one client's session remembers: its last executed request and that request's output. */
export interface Session<O> {
  readonly seq: number;
  readonly output: O;
}

/**
 * The service's answer. `executed`: the request ran now. `duplicate`: it had run before and
 * this is its cached output (a retry). `stale`: an older request than the last one executed
 * for this client; its output is gone, so it gets a clear refusal instead.
 */
export type ServiceOutput<O> =
  | { readonly _tag: "executed"; readonly output: O }
  | { readonly _tag: "duplicate"; readonly output: O }
  | { readonly _tag: "stale"; readonly lastSeq: number };

/** The service's state: the application's state, the session table and how many requests ran. */
export interface ServiceState<S, O> {
  readonly app: S;
  readonly sessions: PersistentMap<Session<O>>;
  /** Number of requests executed (duplicates and stale ones excluded). */
  readonly executed: number;
}

/** The service over an application, as a state machine whose inputs are client requests. */
export interface Service<S, I, O> extends StateMachine<ServiceState<S, O>, Request<I>, ServiceOutput<O>> {
  apply(request: Request<I>, state: ServiceState<S, O>): Applied<ServiceState<S, O>, ServiceOutput<O>>;
  readonly app: Application<S, I, O>;
}

/** Build the service spec for `app`. */
export function serviceOf<S, I, O>(app: Application<S, I, O>): Service<S, I, O> {
  const start: ServiceState<S, O> = { app: app.start, sessions: emptyPersistentMap(), executed: 0 };
  const apply = (request: Request<I>, state: ServiceState<S, O>): Applied<ServiceState<S, O>, ServiceOutput<O>> => {
    const session = pmGet(state.sessions, request.clientId);
    if (session !== undefined && request.seq === session.seq) {
      return { state, output: { _tag: "duplicate", output: session.output } };
    }
    if (session !== undefined && request.seq < session.seq) {
      return { state, output: { _tag: "stale", lastSeq: session.seq } };
    }
    const applied = app.apply(request.input, state.app);
    const sessions = pmSet(state.sessions, request.clientId, { seq: request.seq, output: applied.output });
    return {
      state: { app: applied.state, sessions, executed: state.executed + 1 },
      output: { _tag: "executed", output: applied.output },
    };
  };
  return {
    name: `service(${app.name})`,
    start,
    app,
    apply,
    transition: (request, state) => apply(request, state).state,
    output: (request, state) => apply(request, state).output,
  };
}

/** The session of `clientId`, if any. */
export function sessionOf<S, O>(state: ServiceState<S, O>, clientId: string): Session<O> | undefined {
  return pmGet(state.sessions, clientId);
}

/** Every session, sorted by client id. */
export function sessionsOf<S, O>(state: ServiceState<S, O>): [string, Session<O>][] {
  const out: [string, Session<O>][] = [];
  pmForEach(state.sessions, (clientId, session) => out.push([clientId, session]));
  return out.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** The state with `clientId`'s session set to `session` (for executions outside `apply`). */
export function withSession<S, O>(
  sessions: ServiceState<S, O>["sessions"],
  clientId: string,
  session: Session<O>,
): ServiceState<S, O>["sessions"] {
  return pmSet(sessions, clientId, session);
}

/** The output a client observes: the application output for executed and duplicate requests. */
export function observed<O>(output: ServiceOutput<O>): O | undefined {
  return output._tag === "stale" ? undefined : output.output;
}
