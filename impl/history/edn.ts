/**
 * A reader for the part of EDN (extensible data notation, Clojure's data syntax) that Jepsen
 * histories use: maps, vectors, lists, sets, keywords, strings, numbers, nil, booleans,
 * symbols, tagged literals (`#jepsen.history.Op{...}` reads as its map) and `;` comments.
 * Commas are whitespace. Pure: text in, values out; a malformed text is refused with the line
 * and column where reading stopped.
 */

/** A keyword, such as `:invoke`. */
export class Keyword {
  constructor(readonly name: string) {}
  toString(): string {
    return `:${this.name}`;
  }
}

/** A symbol that is not nil, true or false. */
export class EdnSymbol {
  constructor(readonly name: string) {}
  toString(): string {
    return this.name;
  }
}

/** An EDN value. Maps have keyword, string or number keys in histories; other keys are refused. */
export type Edn =
  | null
  | boolean
  | number
  | string
  | Keyword
  | EdnSymbol
  | readonly Edn[]
  | ReadonlyMap<string, Edn>
  | { readonly set: readonly Edn[] };

/** The map key of a keyword `:f` is "f"; of a string "f" it is "\"f\"" (so the two never meet). */
function mapKey(key: Edn): string {
  if (key instanceof Keyword) return key.name;
  if (typeof key === "string") return JSON.stringify(key);
  if (typeof key === "number") return String(key);
  throw new Error("a map key that is not a keyword, string or number");
}

const delimiters = new Set(["(", ")", "[", "]", "{", "}", '"', ";"]);

class Reader {
  private at = 0;
  constructor(private readonly text: string) {}

  private fail(message: string): never {
    const before = this.text.slice(0, this.at);
    const line = before.split("\n").length;
    const column = this.at - before.lastIndexOf("\n");
    throw new Error(`EDN, line ${line} column ${column}: ${message}`);
  }

  private skip(): void {
    for (;;) {
      const c = this.text[this.at];
      if (c === undefined) return;
      if (c === ";") {
        while (this.at < this.text.length && this.text[this.at] !== "\n") this.at++;
      } else if (c === "," || /\s/.test(c)) this.at++;
      else return;
    }
  }

  /** The next value, or undefined at the end of the text. */
  next(): Edn | undefined {
    this.skip();
    if (this.at >= this.text.length) return undefined;
    return this.value();
  }

  private value(): Edn {
    this.skip();
    const c = this.text[this.at];
    if (c === undefined) this.fail("unexpected end of text");
    if (c === "[" || c === "(") {
      this.at++;
      return this.sequence(c === "[" ? "]" : ")");
    }
    if (c === "{") {
      this.at++;
      return this.map();
    }
    if (c === '"') return this.string();
    if (c === "#") {
      this.at++;
      if (this.text[this.at] === "{") {
        this.at++;
        return { set: this.sequence("}") };
      }
      if (this.text[this.at] === "_") {
        this.at++;
        this.value();
        return this.value();
      }
      this.token(); // the tag: the value that follows stands for itself
      return this.value();
    }
    if (c === ")" || c === "]" || c === "}") this.fail(`unexpected "${c}"`);
    return this.atom(this.token());
  }

  private sequence(close: string): Edn[] {
    const items: Edn[] = [];
    for (;;) {
      this.skip();
      if (this.text[this.at] === close) {
        this.at++;
        return items;
      }
      if (this.at >= this.text.length) this.fail(`missing "${close}"`);
      items.push(this.value());
    }
  }

  private map(): ReadonlyMap<string, Edn> {
    const items = this.sequence("}");
    if (items.length % 2 !== 0) this.fail("a map with an odd number of forms");
    const map = new Map<string, Edn>();
    for (let i = 0; i < items.length; i += 2) {
      try {
        map.set(mapKey(items[i]!), items[i + 1]!);
      } catch (error) {
        this.fail((error as Error).message);
      }
    }
    return map;
  }

  private string(): string {
    let out = "";
    this.at++;
    for (;;) {
      const c = this.text[this.at++];
      if (c === undefined) this.fail("unterminated string");
      if (c === '"') return out;
      if (c !== "\\") {
        out += c;
        continue;
      }
      const e = this.text[this.at++];
      const escapes: Record<string, string> = { n: "\n", t: "\t", r: "\r", '"': '"', "\\": "\\" };
      const escaped = e === undefined ? undefined : escapes[e];
      if (escaped !== undefined) out += escaped;
      else if (e === "u") {
        out += String.fromCharCode(parseInt(this.text.slice(this.at, this.at + 4), 16));
        this.at += 4;
      } else this.fail(`unknown escape \\${e ?? ""}`);
    }
  }

  private token(): string {
    const start = this.at;
    while (this.at < this.text.length) {
      const c = this.text[this.at]!;
      if (c === "," || /\s/.test(c) || delimiters.has(c)) break;
      this.at++;
    }
    if (this.at === start) this.fail(`unexpected "${this.text[this.at] ?? ""}"`);
    return this.text.slice(start, this.at);
  }

  private atom(token: string): Edn {
    if (token === "nil") return null;
    if (token === "true") return true;
    if (token === "false") return false;
    if (token.startsWith(":")) return new Keyword(token.slice(1));
    if (/^[+-]?\d/.test(token)) {
      const ratio = /^([+-]?\d+)\/(\d+)$/.exec(token);
      const n = ratio !== null ? Number(ratio[1]) / Number(ratio[2]) : Number(token.replace(/[NM]$/, ""));
      if (!Number.isFinite(n)) this.fail(`not a number: ${token}`);
      return n;
    }
    if (token.startsWith("\\")) return token.slice(1);
    return new EdnSymbol(token);
  }
}

/** Every top-level value of an EDN text, in order. */
export function readEdnAll(text: string): Edn[] {
  const reader = new Reader(text);
  const values: Edn[] = [];
  for (let v = reader.next(); v !== undefined; v = reader.next()) values.push(v);
  return values;
}

/** True for an EDN map. */
export function isEdnMap(value: Edn | undefined): value is ReadonlyMap<string, Edn> {
  return value instanceof Map;
}

/** A short printed form of a value, for messages and for turning values into kv strings. */
export function ednToString(value: Edn): string {
  if (value === null) return "nil";
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if (value instanceof Keyword || value instanceof EdnSymbol) return value.toString();
  if (Array.isArray(value)) return `[${value.map(ednToString).join(" ")}]`;
  if (isEdnMap(value)) return `{${[...value].map(([k, v]) => `${k} ${ednToString(v)}`).join(", ")}}`;
  return `#{${(value as { set: Edn[] }).set.map(ednToString).join(" ")}}`;
}
