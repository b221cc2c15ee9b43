/**
 * How a hunt's effort reads in reports: the explorer counts distinct states, the random suite
 * counts runs ("1 run", "8,501 states").
 */
export function huntEffort(engine: "explore" | "random", effort: number): string {
  const noun = engine === "explore" ? "state" : "run";
  return `${effort.toLocaleString("en")} ${noun}${effort === 1 ? "" : "s"}`;
}
