/**
 * The bridge from a Schema to a fast-check 4 arbitrary: the same Schema that decodes a
 * message or record at a boundary also generates it in tests and inductive checks.
 *
 * effect 3 types its bridge against the fast-check 3 API it bundles; at run time
 * `Arbitrary.makeLazy(schema)` only calls combinators that fast-check 4 still has, so the
 * casts below are confined to this one function.
 */
import fc from "fast-check";
import { Arbitrary, type Schema } from "effect";

type EffectFastCheck = Parameters<ReturnType<typeof Arbitrary.makeLazy>>[0];

/** A fast-check 4 arbitrary for every value of `schema`'s type. */
export function arbitraryOf<A, I>(schema: Schema.Schema<A, I>): fc.Arbitrary<A> {
  return Arbitrary.makeLazy(schema)(fc as unknown as EffectFastCheck) as unknown as fc.Arbitrary<A>;
}
