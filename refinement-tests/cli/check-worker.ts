/**
 * A worker thread of `npm run check`: runs its share of a campaign's run indices and posts
 * progress after every run, then its totals. See cli/check.ts.
 */
import { parentPort, workerData } from "node:worker_threads";
import { runIndices, type CampaignOptions, type CampaignTotals } from "../campaign.ts";
import { mutantNamed } from "../mutants/index.ts";

interface Job {
  readonly indices: readonly number[];
  readonly options: Omit<CampaignOptions, "step">;
  readonly mutant: string | null;
}

const job = workerData as Job;
const port = parentPort!;
const step = job.mutant === null ? undefined : mutantNamed(job.mutant).step;
let reported = { runs: 0, events: 0 };
const started = performance.now();
const totals: CampaignTotals = runIndices(
  job.indices,
  { ...job.options, ...(step === undefined ? {} : { step }) },
  (t) => {
    port.postMessage({ type: "progress", runs: t.runs - reported.runs, events: t.events - reported.events });
    reported = { runs: t.runs, events: t.events };
    return undefined;
  },
);
port.postMessage({ type: "done", totals, busyMs: performance.now() - started });
