/**
 * Debian's Chromium (/usr/bin/chromium) driven by playwright-core, for the tests of the pages
 * and browser protections a replica serves. Missing Chromium fails under CI (.ci/run installs
 * it) and skips elsewhere. Test-only.
 */
import fs from "node:fs";
import type { Browser } from "playwright-core";

export const chromiumPath = "/usr/bin/chromium";

/**
 * Launch headless Chromium with a fresh temporary profile; `hostRules` are Chromium's
 * --host-resolver-rules (e.g. "MAP attacker.example 127.0.0.1": a hostile name that resolves to
 * this machine, as DNS rebinding makes it). Null (after `skip`) when Chromium is missing outside CI.
 */
export async function launchChromium(skip: (reason: string) => void, hostRules?: string): Promise<Browser | null> {
  if (!fs.existsSync(chromiumPath)) {
    if (process.env.CI === "true")
      throw new Error(`${chromiumPath} is missing: .ci/run must install Debian's chromium`);
    skip(`${chromiumPath} is not installed (apt-get install -y chromium)`);
    return null;
  }
  const { chromium } = await import("playwright-core");
  return chromium.launch({
    executablePath: chromiumPath,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      ...(hostRules === undefined ? [] : [`--host-resolver-rules=${hostRules}`]),
    ],
  });
}
