#!/usr/bin/env node
// The `paxos-lease` command installed by npm: runs impl/runtime/cli.ts from its TypeScript
// source through tsx's loader (the project ships no build step).
import { register } from "tsx/esm/api";

register();
const { main } = await import("./cli.ts");
await main(process.argv.slice(2));
