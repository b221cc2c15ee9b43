/**
 * `npm run explore` compiled for a fresh process: esbuild bundles refinement-tests/cli/explore.ts
 * and everything it imports (`effect` included, which tsx would load as some 600 modules) into
 * dist/explore.mjs, which plain Node runs. Under tsx a fresh process spends over a second loading
 * the explorer's modules through tsx's loader thread, and names every closure it makes at run time
 * (keepNames); the bundle loads in a few tenths of a second and names nothing. The search is the
 * same code: only how it is loaded changes.
 *
 * A module that finds files beside itself (regression files, mutant traces, the trace viewer's
 * client) reads its own `import.meta.url`: in the bundle each module's is replaced by the URL of
 * its source file, so those files are found where they are. The entry keeps the bundle's own,
 * which is how it knows it was run rather than imported.
 *
 * `npm run explore` runs `tsx refinement-tests/cli/build.ts --if-stale` first: it builds only when
 * the sources changed since the last build (their hash is kept in dist/explore.sha256). Development
 * tool: nothing imports it.
 */
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { projectRoot } from "../../impl/runtime/program.ts";
import { externalPackages, replace, sourcesHash } from "../../impl/runtime/build.ts";

const entry = path.join(projectRoot, "refinement-tests", "cli", "explore.ts");
const bundlePath = path.join(projectRoot, "dist", "explore.mjs");
const hashFile = path.join(projectRoot, "dist", "explore.sha256");
/** Folders the explorer is compiled from. */
const sourceFolders = ["impl", "spec", "proofs", "refinement-tests"];

/** Build dist/explore.mjs from the sources now. */
async function build(hash: string): Promise<void> {
  const esbuild = await import("esbuild");
  const external = externalPackages();
  const result = await esbuild.build({
    entryPoints: [entry],
    bundle: true,
    format: "esm",
    platform: "node",
    target: "node20",
    external,
    write: false,
    outfile: bundlePath,
    logLevel: "warning",
    plugins: [
      {
        name: "import-meta-url-of-the-source",
        setup(b) {
          b.onLoad({ filter: /\.ts$/ }, (args) => {
            const source = fs.readFileSync(args.path, "utf8");
            if (args.path === entry || !source.includes("import.meta.url")) return { contents: source, loader: "ts" };
            const url = JSON.stringify(pathToFileURL(args.path).href);
            return { contents: source.replaceAll("import.meta.url", url), loader: "ts" };
          });
        },
      },
    ],
  });
  fs.mkdirSync(path.dirname(bundlePath), { recursive: true });
  replace(bundlePath, result.outputFiles[0]!.contents);
  replace(hashFile, `${hash}\n`);
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === path.join(import.meta.dirname, "build.ts")) {
  const started = performance.now();
  const hash = sourcesHash(sourceFolders);
  const fresh =
    process.argv.includes("--if-stale") &&
    fs.existsSync(bundlePath) &&
    fs.existsSync(hashFile) &&
    fs.readFileSync(hashFile, "utf8").trim() === hash;
  if (!fresh) {
    await build(hash);
    process.stderr.write(
      `built ${path.relative(process.cwd(), bundlePath)} in ${(performance.now() - started).toFixed(0)} ms\n`,
    );
  }
}
