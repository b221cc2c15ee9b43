/**
 * A compact binary codec compiled from a Schema's AST: the Schema stays the one definition of
 * every message, and this reads it once to build an encoder and a checking decoder. Peer messages
 * travel in it (impl/runtime/transport.ts) instead of JSON parsed and then decoded by the Schema:
 * a string is its length and its UTF-8 bytes (a 1 MiB value is copied, never escaped or parsed),
 * a number one kind byte and a varint or a float64, a union member one index byte, a struct its
 * fields in the Schema's order, an array its length and its items.
 *
 * The decoder is a network boundary and trusts nothing: it checks every length against the bytes
 * there are, every union index, every string's UTF-8, that nothing follows the value, and every
 * refinement of the Schema (integers, ranges, string lengths, patterns, cross-field filters) by
 * running the Schema's own filters, once, as the bytes are read. A failure is a `Left` naming the
 * field and what was wrong; it never throws. The encoder trusts its input: values are built by
 * typed code and checked again where they are received. Supported: structs, tagged and other
 * unions, tuples and arrays, literals, strings, numbers, booleans, refinements; a Schema with a
 * transformation or a declaration is refused when the codec is built.
 */
import { isUtf8 } from "node:buffer";
import { Either, Option, ParseResult, Schema, SchemaAST } from "effect";
import { encodesAsItself } from "./framing.ts";

/** A value of `A` as bytes, and back with checking. */
export interface BinaryCodec<A> {
  /**
   * The bytes of `value`, a value of the Schema's type (not checked here). With `scratch` large
   * enough, they are written at its start and returned as a view of it (valid until `scratch` is
   * written again): a caller that hands each encoding on at once (SQLite copies what it binds)
   * spares a fresh buffer, whose pages the kernel must supply, per value.
   */
  encode(value: A, scratch?: Buffer): Buffer;
  /**
   * The bytes of `value`, written into the memory `allocate` gives for their size (a Buffer of
   * exactly that length): a caller that hands the bytes to another thread by transfer gives a
   * view at the start of an ArrayBuffer of its own, never a slice of Node's pool.
   */
  encodeWith(value: A, allocate: (bytes: number) => Buffer): Buffer;
  /**
   * The value in `bytes` from `offset` to the end; `Left` names the field and what was wrong.
   * `onUtf8String`, if given, is called with every UTF-8 string of 64 KiB or more as it is made
   * and the bytes it was made from (a view of `bytes`, valid only during the call).
   */
  decode(
    bytes: Uint8Array,
    offset?: number,
    onUtf8String?: (text: string, utf8: Uint8Array) => void,
  ): Either.Either<A, string>;
  /**
   * The first `fields` fields of the struct at the start of `bytes` (for a union of structs, of the
   * member there), whatever follows them: a stored record's tag and slot read from its first bytes,
   * without its value. Refinements are not checked. `Left` when the bytes end or go wrong first, or
   * the value there is no struct.
   */
  decodeHead(bytes: Uint8Array, fields: number): Either.Either<Readonly<Record<string, unknown>>, string>;
}

/**
 * Why decoding stopped (thrown inside the decoder, returned as a `Left`), with the path of the
 * field: built on the way out, each struct and array adding its step as the failure passes it,
 * so that a decode that succeeds never builds a path (an Accept of 16 commands built about 3 KB
 * of them, one per field read).
 */
class DecodeFailure extends Error {
  constructor(
    public path: string,
    readonly reason: string,
  ) {
    super(reason);
  }
}

/** Rethrow `error` with `step` in front of its path, if it is a DecodeFailure. */
function within(error: unknown, step: string): never {
  if (error instanceof DecodeFailure) error.path = step + error.path;
  throw error;
}

class Writer {
  pos = 0;
  constructor(readonly buf: Buffer) {}
}

class Reader {
  constructor(
    readonly buf: Buffer,
    public pos: number,
    readonly end: number,
    readonly onUtf8String?: (text: string, utf8: Uint8Array) => void,
  ) {}
}

/** The shortest string `onUtf8String` of `decode` is told about, in bytes. */
const reportedStringBytesMin = 64 * 1024;

/** One compiled Schema node: its encoded size, its encoder and its decoder. */
interface Node {
  size(value: unknown): number;
  write(w: Writer, value: unknown): void;
  /** The value at `r`; throws a DecodeFailure whose path is relative to this node. */
  read(r: Reader): unknown;
  /** The first `fields` fields of a struct (through unions and refinements); absent for other nodes. */
  head?(r: Reader, fields: number): Record<string, unknown>;
  /** Fewest bytes any value takes (bounds array lengths on decode). */
  readonly minBytes: number;
}

/** Longest varint: 8 bytes carry 56 bits, more than any safe integer needs. */
const varintBytesMax = 8;

function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 0x80);
    size += 1;
  }
  return size;
}

function writeVarint(w: Writer, n: number): void {
  while (n >= 0x80) {
    w.buf[w.pos++] = (n % 0x80) | 0x80;
    n = Math.floor(n / 0x80);
  }
  w.buf[w.pos++] = n;
}

function readVarint(r: Reader): number {
  let n = 0;
  let scale = 1;
  for (let i = 0; i < varintBytesMax; i++) {
    if (r.pos >= r.end) throw new DecodeFailure("", "ends inside a number");
    const byte = r.buf[r.pos++]!;
    n += (byte & 0x7f) * scale;
    if (byte < 0x80) {
      if (!Number.isSafeInteger(n)) throw new DecodeFailure("", "a length or integer beyond 2^53");
      return n;
    }
    scale *= 0x80;
  }
  throw new DecodeFailure("", `a varint longer than ${varintBytesMax} bytes`);
}

function need(r: Reader, bytes: number, what: string): void {
  if (r.end - r.pos < bytes)
    throw new DecodeFailure("", `ends inside ${what} (${bytes} bytes announced, ${r.end - r.pos} left)`);
}

/** Numbers: a kind byte, then a varint (integers, by sign) or a float64 (everything else, -0 included). */
const numberKind = { nonNegative: 0, negative: 1, float: 2 } as const;

const numberNode: Node = {
  minBytes: 2,
  size: (v) => {
    const n = v as number;
    return Number.isSafeInteger(n) && !Object.is(n, -0) ? 1 + varintSize(Math.abs(n)) : 9;
  },
  write(w, v) {
    const n = v as number;
    if (Number.isSafeInteger(n) && !Object.is(n, -0)) {
      w.buf[w.pos++] = n >= 0 ? numberKind.nonNegative : numberKind.negative;
      writeVarint(w, Math.abs(n));
      return;
    }
    w.buf[w.pos++] = numberKind.float;
    w.buf.writeDoubleLE(n, w.pos);
    w.pos += 8;
  },
  read(r) {
    need(r, 1, "a number");
    const kind = r.buf[r.pos++];
    if (kind === numberKind.nonNegative) return readVarint(r);
    if (kind === numberKind.negative) {
      const n = readVarint(r);
      if (n === 0) throw new DecodeFailure("", "a negative zero written as an integer");
      return -n;
    }
    if (kind !== numberKind.float) throw new DecodeFailure("", `a number of unknown kind ${kind}`);
    need(r, 8, "a number");
    const n = r.buf.readDoubleLE(r.pos);
    r.pos += 8;
    return n;
  },
};

/**
 * Strings: a varint of (byte length * 2 + form), then the bytes: form 0 is UTF-8; form 1 is raw
 * UTF-16 for the rare string with an unpaired surrogate, which UTF-8 cannot carry (JSON escaped
 * it; a replacement character here would make replicas diverge).
 */
/** `String.prototype.isWellFormed` (Node 20 has it; the TypeScript lib the project targets does not declare it). */
function isWellFormed(s: string): boolean {
  return (s as unknown as { isWellFormed(): boolean }).isWellFormed();
}

const stringNode: Node = {
  minBytes: 1,
  size: (v) => {
    const s = v as string;
    const bytes = isWellFormed(s) ? Buffer.byteLength(s, "utf8") : s.length * 2;
    return varintSize(bytes * 2 + 1) + bytes;
  },
  write(w, v) {
    const s = v as string;
    if (isWellFormed(s)) {
      const bytes = Buffer.byteLength(s, "utf8");
      writeVarint(w, bytes * 2);
      w.pos += w.buf.write(s, w.pos, bytes, "utf8");
    } else {
      writeVarint(w, s.length * 4 + 1);
      w.pos += w.buf.write(s, w.pos, s.length * 2, "utf16le");
    }
  },
  read(r) {
    const header = readVarint(r);
    const bytes = Math.floor(header / 2);
    need(r, bytes, "a string");
    const start = r.pos;
    r.pos += bytes;
    if (header % 2 === 1) {
      if (bytes % 2 === 1) throw new DecodeFailure("", "a UTF-16 string of an odd number of bytes");
      return r.buf.toString("utf16le", start, r.pos);
    }
    if (!isAscii(r.buf, start, r.pos) && !isUtf8(r.buf.subarray(start, r.pos)))
      throw new DecodeFailure("", "a string that is not valid UTF-8");
    const text = r.buf.toString("utf8", start, r.pos);
    if (r.onUtf8String !== undefined && bytes >= reportedStringBytesMin)
      r.onUtf8String(text, r.buf.subarray(start, r.pos));
    return text;
  },
};

/** True when bytes[start, end) are all ASCII; short strings only (keys, ids), where it beats a native call. */
function isAscii(buf: Buffer, start: number, end: number): boolean {
  if (end - start > 64) return false;
  for (let i = start; i < end; i++) if (buf[i]! >= 0x80) return false;
  return true;
}

const booleanNode: Node = {
  minBytes: 1,
  size: () => 1,
  write(w, v) {
    w.buf[w.pos++] = v === true ? 1 : 0;
  },
  read(r) {
    need(r, 1, "a boolean");
    const byte = r.buf[r.pos++];
    if (byte !== 0 && byte !== 1) throw new DecodeFailure("", `a boolean byte ${byte}`);
    return byte === 1;
  },
};

/** A value fixed by the Schema (a literal, or undefined): no bytes. */
function constantNode(value: unknown): Node {
  return { minBytes: 0, size: () => 0, write: () => undefined, read: () => value };
}

function compile(ast: SchemaAST.AST, seen: Map<SchemaAST.AST, Node>): Node {
  const known = seen.get(ast);
  if (known !== undefined) return known;
  switch (ast._tag) {
    case "StringKeyword":
      return stringNode;
    case "NumberKeyword":
      return numberNode;
    case "BooleanKeyword":
      return booleanNode;
    case "UndefinedKeyword":
      return constantNode(undefined);
    case "Literal":
      return constantNode(ast.literal);
    case "Refinement":
      return refinementNode(ast, seen);
    case "TypeLiteral":
      return structNode(ast, seen);
    case "Union":
      return unionNode(ast, seen);
    case "TupleType":
      return tupleNode(ast, seen);
    case "Suspend": {
      // A recursive Schema: the node is filled in once its body is compiled.
      const node: Node = { minBytes: 0, size: () => 0, write: () => undefined, read: () => undefined };
      seen.set(ast, node);
      Object.assign(node, compile(ast.f(), seen));
      return node;
    }
    default:
      throw new Error(`the binary codec cannot carry a Schema node of kind ${ast._tag}`);
  }
}

/** The parse options every filter runs with (Schema's defaults): one object, not one per value read. */
const filterOptions: SchemaAST.ParseOptions = {};

/** The Schema's own filter, run on the decoded value: the refinement is checked exactly as Schema checks it. */
function refinementNode(ast: SchemaAST.Refinement, seen: Map<SchemaAST.AST, Node>): Node {
  const from = compile(ast.from, seen);
  return {
    minBytes: from.minBytes,
    size: (v) => from.size(v),
    write: (w, v) => from.write(w, v),
    // Read when the value is read: the node of a recursive Schema is filled in after this one is built.
    head(r, fields) {
      if (from.head === undefined) throw new DecodeFailure("", "not a struct");
      return from.head(r, fields);
    },
    read(r) {
      const value = from.read(r);
      const issue = ast.filter(value, filterOptions, ast);
      if (Option.isSome(issue)) throw new DecodeFailure("", ParseResult.TreeFormatter.formatIssueSync(issue.value));
      return value;
    },
  };
}

function structNode(ast: SchemaAST.TypeLiteral, seen: Map<SchemaAST.AST, Node>): Node {
  if (ast.indexSignatures.length > 0) throw new Error("the binary codec cannot carry a record (index signature)");
  const fields = ast.propertySignatures.map((p) => {
    if (typeof p.name !== "string") throw new Error("the binary codec carries string keys only");
    // An optional field says whether it is there; its Schema's `undefined` member is then never written.
    const type = p.isOptional ? withoutUndefined(p.type) : p.type;
    return { name: p.name, optional: p.isOptional, node: compile(type, seen) };
  });
  return {
    minBytes: fields.reduce((n, f) => n + (f.optional ? 1 : f.node.minBytes), 0),
    size(v) {
      const o = v as Record<string, unknown>;
      let size = 0;
      for (const f of fields) {
        const value = o[f.name];
        if (f.optional) size += value === undefined ? 1 : 1 + f.node.size(value);
        else size += f.node.size(value);
      }
      return size;
    },
    write(w, v) {
      const o = v as Record<string, unknown>;
      for (const f of fields) {
        const value = o[f.name];
        if (f.optional) {
          w.buf[w.pos++] = value === undefined ? 0 : 1;
          if (value === undefined) continue;
        }
        f.node.write(w, value);
      }
    },
    read: (r) => head(r, fields.length),
    head,
  };
  function head(r: Reader, count: number): Record<string, unknown> {
    const o: Record<string, unknown> = {};
    let i = 0;
    try {
      for (; i < count && i < fields.length; i++) {
        const f = fields[i]!;
        if (f.optional) {
          need(r, 1, "a field");
          const present = r.buf[r.pos++];
          if (present === 0) continue;
          if (present !== 1) throw new DecodeFailure("", `a presence byte ${present}`);
        }
        o[f.name] = f.node.read(r);
      }
    } catch (error) {
      within(error, `.${fields[i]!.name}`);
    }
    return o;
  }
}

function withoutUndefined(ast: SchemaAST.AST): SchemaAST.AST {
  if (ast._tag !== "Union") return ast;
  const types = ast.types.filter((t) => t._tag !== "UndefinedKeyword");
  return types.length === ast.types.length ? ast : SchemaAST.Union.make(types, ast.annotations);
}

/** The struct a union member is, under its refinements, if it is one. */
function structOf(ast: SchemaAST.AST): SchemaAST.TypeLiteral | null {
  if (ast._tag === "Refinement") return structOf(ast.from);
  if (ast._tag === "Suspend") return structOf(ast.f());
  return ast._tag === "TypeLiteral" ? ast : null;
}

/**
 * How the encoder picks a union's member: by a field every member fixes to a literal (`_tag`,
 * `op`), and where several members share that literal (a record's two kinds of `chosen`), by the
 * field that only one of those requires (`value`, `ballot`) when the value holds exactly one such
 * field, else by the Schema guard (Schema.is) of each of those, in order; else by every member's
 * guard, in order. A guard checks the whole value (every command of a batch, through effect's
 * parser), and the encoder, which trusts its input, ran it twice per value (for the size, then the
 * bytes): a third of the storage thread's JavaScript per small write went to the `chosen` record's
 * guards (docs/performance.md, "The encoder's union guards").
 */
function memberOf(ast: SchemaAST.Union): (value: unknown) => number {
  const structs = ast.types.map(structOf);
  const guard = (i: number): ((value: unknown) => boolean) => Schema.is(Schema.make(ast.types[i]!));
  if (structs.every((s) => s !== null)) {
    const candidates = structs[0]!.propertySignatures.map((p) => p.name).filter((n) => typeof n === "string");
    for (const name of candidates) {
      const byLiteral = new Map<unknown, number[]>();
      structs.forEach((s, i) => {
        const p = s?.propertySignatures.find((q) => q.name === name);
        if (p === undefined || p.type._tag !== "Literal" || p.isOptional) return;
        byLiteral.set(p.type.literal, [...(byLiteral.get(p.type.literal) ?? []), i]);
      });
      if ([...byLiteral.values()].reduce((n, members) => n + members.length, 0) !== ast.types.length) continue;
      const pick = new Map(
        [...byLiteral].map(([literal, members]): [unknown, (value: unknown) => number] => {
          if (members.length === 1) return [literal, () => members[0]!];
          const guards = members.map((i) => [i, guard(i)] as const);
          const byGuard = (value: unknown): number => guards.find(([, is]) => is(value))?.[0] ?? -1;
          const own = ownFields(members.map((i) => structs[i]!));
          if (own === null) return [literal, byGuard];
          return [
            literal,
            (value) => {
              const o = value as Record<string, unknown>;
              let found = -1;
              for (const [k, field] of own.entries()) {
                if (o[field] === undefined) continue;
                if (found >= 0) return byGuard(value);
                found = k;
              }
              return found < 0 ? byGuard(value) : members[found]!;
            },
          ];
        }),
      );
      return (value) => pick.get((value as Record<string, unknown>)[name])?.(value) ?? -1;
    }
  }
  // Literals (null, say) by identity; when one member is left, it takes every other value.
  const constant = ast.types.map((t) =>
    t._tag === "Literal" ? { value: t.literal } : t._tag === "UndefinedKeyword" ? { value: undefined } : null,
  );
  const others = constant.flatMap((c, i) => (c === null ? [i] : []));
  if (others.length === 1) {
    const other = others[0]!;
    return (value) => {
      const i = constant.findIndex((c) => c !== null && c.value === value);
      return i >= 0 ? i : other;
    };
  }
  const guards = ast.types.map((_, i) => guard(i));
  return (value) => guards.findIndex((is) => is(value));
}

/**
 * For structs that share their literal: for each, a field it requires that none of the others
 * declares at all (null when one has none), so that which of them a value is can be read from the
 * fields it holds.
 */
function ownFields(structs: readonly SchemaAST.TypeLiteral[]): string[] | null {
  const own = structs.map((s, i) => {
    const field = s.propertySignatures.find(
      (p) =>
        !p.isOptional &&
        typeof p.name === "string" &&
        structs.every((other, j) => j === i || !other.propertySignatures.some((q) => q.name === p.name)),
    );
    return typeof field?.name === "string" ? field.name : null;
  });
  return own.every((f) => f !== null) ? own : null;
}

function unionNode(ast: SchemaAST.Union, seen: Map<SchemaAST.AST, Node>): Node {
  if (ast.types.length > 256) throw new Error("the binary codec carries unions of at most 256 members");
  const members = ast.types.map((t) => compile(t, seen));
  const pick = memberOf(ast);
  const index = (value: unknown): number => {
    const i = pick(value);
    if (i < 0) throw new Error(`binary codec: ${JSON.stringify(value)?.slice(0, 200)} is no member of the union`);
    return i;
  };
  return {
    minBytes: 1 + Math.min(...members.map((m) => m.minBytes)),
    size: (v) => 1 + members[index(v)]!.size(v),
    write(w, v) {
      const i = index(v);
      w.buf[w.pos++] = i;
      members[i]!.write(w, v);
    },
    read(r) {
      need(r, 1, "a union member");
      const i = r.buf[r.pos++]!;
      const member = members[i];
      if (member === undefined) throw new DecodeFailure("", `member ${i} of a union of ${members.length}`);
      return member.read(r);
    },
    head(r, fields) {
      need(r, 1, "a union member");
      const i = r.buf[r.pos++]!;
      const member = members[i];
      if (member === undefined) throw new DecodeFailure("", `member ${i} of a union of ${members.length}`);
      if (member.head === undefined) throw new DecodeFailure("", "not a struct");
      return member.head(r, fields);
    },
  };
}

function tupleNode(ast: SchemaAST.TupleType, seen: Map<SchemaAST.AST, Node>): Node {
  if (ast.rest.length > 1) throw new Error("the binary codec carries arrays with one rest element at most");
  const elements = ast.elements.map((e) => ({ optional: e.isOptional, node: compile(e.type, seen) }));
  const rest = ast.rest.length === 1 ? compile(ast.rest[0]!.type, seen) : null;
  return {
    minBytes: elements.reduce((n, e) => n + (e.optional ? 1 : e.node.minBytes), 0) + (rest === null ? 0 : 1),
    size(v) {
      const a = v as readonly unknown[];
      let size = 0;
      elements.forEach((e, i) => {
        if (e.optional) size += 1;
        if (i < a.length) size += e.node.size(a[i]);
      });
      if (rest === null) return size;
      const count = Math.max(0, a.length - elements.length);
      size += varintSize(count);
      for (let i = elements.length; i < a.length; i++) size += rest.size(a[i]);
      return size;
    },
    write(w, v) {
      const a = v as readonly unknown[];
      elements.forEach((e, i) => {
        if (e.optional) w.buf[w.pos++] = i < a.length ? 1 : 0;
        if (i < a.length) e.node.write(w, a[i]);
      });
      if (rest === null) return;
      writeVarint(w, Math.max(0, a.length - elements.length));
      for (let i = elements.length; i < a.length; i++) rest.write(w, a[i]);
    },
    read(r) {
      const a: unknown[] = [];
      try {
        for (const e of elements) {
          if (e.optional) {
            need(r, 1, "an element");
            const present = r.buf[r.pos++];
            if (present === 0) break;
            if (present !== 1) throw new DecodeFailure("", `a presence byte ${present}`);
          }
          a.push(e.node.read(r));
        }
      } catch (error) {
        within(error, `[${a.length}]`);
      }
      if (rest === null) return a;
      const count = readVarint(r);
      // Every item takes at least minBytes: a count the bytes cannot hold is refused before any allocation.
      if (count * Math.max(1, rest.minBytes) > r.end - r.pos && rest.minBytes > 0)
        throw new DecodeFailure("", `${count} items announced, more than the ${r.end - r.pos} bytes left can hold`);
      if (rest.minBytes === 0 && count > 1 << 16) throw new DecodeFailure("", `${count} items announced`);
      try {
        for (let i = 0; i < count; i++) a.push(rest.read(r));
      } catch (error) {
        within(error, `[${a.length}]`);
      }
      return a;
    },
  };
}

/** Run `read` on `bytes` from `offset`: its value, or the reason it stopped (never a throw). */
function reading<T>(
  bytes: Uint8Array,
  offset: number,
  read: (r: Reader) => T,
  onUtf8String?: (text: string, utf8: Uint8Array) => void,
): Either.Either<T, string> {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  try {
    return Either.right(read(new Reader(buf, offset, buf.length, onUtf8String)));
  } catch (error) {
    if (error instanceof DecodeFailure) return Either.left(`message${error.path}: ${error.reason}`);
    return Either.left(`not a message: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/**
 * The binary codec of `schema`, whose values must encode as themselves (no transformation: what
 * typed code builds is what travels). Throws at once for a Schema it cannot carry.
 */
export function binaryCodec<A, I>(schema: Schema.Schema<A, I>): BinaryCodec<A> {
  if (!encodesAsItself(schema.ast))
    throw new Error("the binary codec needs a Schema whose values encode as themselves");
  const root = compile(schema.ast, new Map());
  return {
    encode(value, scratch) {
      const size = root.size(value);
      const w = new Writer(scratch !== undefined && scratch.length >= size ? scratch : Buffer.allocUnsafe(size));
      root.write(w, value);
      if (w.pos !== size) throw new Error(`binary codec wrote ${w.pos} bytes of ${size}`);
      return w.buf.length === size ? w.buf : w.buf.subarray(0, size);
    },
    encodeWith(value, allocate) {
      const size = root.size(value);
      const w = new Writer(allocate(size));
      if (w.buf.length !== size) throw new Error(`binary codec: given ${w.buf.length} bytes to write ${size}`);
      root.write(w, value);
      if (w.pos !== size) throw new Error(`binary codec wrote ${w.pos} bytes of ${size}`);
      return w.buf;
    },
    decode(bytes, offset = 0, onUtf8String) {
      const read = reading(bytes, offset, (r) => ({ value: root.read(r) as A, left: r.end - r.pos }), onUtf8String);
      return Either.flatMap(read, ({ value, left }) =>
        left === 0 ? Either.right(value) : Either.left(`${left} bytes follow the message`),
      );
    },
    decodeHead(bytes, fields) {
      return reading(bytes, 0, (r) => {
        if (root.head === undefined) throw new DecodeFailure("", "not a struct");
        return root.head(r, fields);
      });
    },
  };
}
