/**
 * `npm run explore` compiled for a fresh process: esbuild bundles refinement-tests/cli/explore.ts
 * and everything it imports (`effect` included, which tsx would load as some 600 modules) into
 * dist/explorer.mjs, which plain Node runs. Under tsx a fresh process spends over a second loading
 * the explorer's modules through tsx's loader thread, and names every closure it makes at run time
 * (keepNames); the bundle loads in a few tenths of a second and names nothing. The search is the
 * same code: only how it is loaded changes.
 *
 * A module that finds files beside itself (regression files, mutant traces, the trace viewer's
 * client) reads its own `import.meta.url`: in the bundle each module's is replaced by the URL of
 * its source file, so those files are found where they are. The entry keeps the bundle's own,
 * which is how it knows it was run rather than imported.
 *
 * `npm run explore` builds first only when there is no bundle; the bundle, once loaded, checks
 * that the sources are those it was built from (their hash is kept in dist/explorer.sha256:
 * `rerunIfStale` in ./bundle.ts), and otherwise rebuilds and runs the new bundle with the same
 * arguments. So a fresh process hashes the sources (a few hundredths of a CPU second) instead of
 * starting tsx to do it (about 0.35 CPU s more). `tsx refinement-tests/cli/build.ts` always
 * builds, `--if-stale` only when the sources changed.
 */
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { projectRoot } from "../../impl/runtime/program.ts";
import { externalPackages, replace, sourcesHash } from "../../impl/runtime/build.ts";
import { buildScript, bundleIsStale, bundlePath, hashFile, sourceFolders } from "./bundle.ts";

const entry = path.join(projectRoot, "refinement-tests", "cli", "explore.ts");

/** Build dist/explorer.mjs from the sources now. */
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

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === buildScript) {
  const started = performance.now();
  const hash = sourcesHash(sourceFolders);
  if (!process.argv.includes("--if-stale") || bundleIsStale(hash)) {
    await build(hash);
    process.stderr.write(
      `built ${path.relative(process.cwd(), bundlePath)} in ${(performance.now() - started).toFixed(0)} ms\n`,
    );
  }
}
