/**
 * Small, dependency-free SVG charts for docs/performance.md: lines over a numeric or
 * categorical x axis, empirical distribution functions, and dot plots with medians. Pure:
 * each function returns the SVG text; the same inputs give the same bytes.
 */

/** One series of points. */
export interface Series {
  readonly name: string;
  readonly color: string;
  readonly points: readonly (readonly [number, number])[];
}

interface Frame {
  readonly width: number;
  readonly height: number;
  readonly left: number;
  readonly right: number;
  readonly top: number;
  readonly bottom: number;
}

const frame: Frame = { width: 640, height: 360, left: 64, right: 150, top: 36, bottom: 48 };

function escape(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** Round numbers for ticks: 1, 2, 5 times a power of ten. */
function ticks(max: number, count = 5): number[] {
  if (!(max > 0)) return [0];
  const raw = max / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let v = 0; v <= max * 1.0001; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

function header(title: string, subtitle: string): string[] {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${frame.width}" height="${frame.height}" viewBox="0 0 ${frame.width} ${frame.height}" font-family="system-ui, sans-serif" font-size="11">`,
    `<rect width="${frame.width}" height="${frame.height}" fill="white"/>`,
    `<text x="${frame.left}" y="16" font-size="13" font-weight="bold">${escape(title)}</text>`,
    `<text x="${frame.left}" y="30" fill="#555">${escape(subtitle)}</text>`,
  ];
}

function legend(series: readonly { name: string; color: string }[]): string[] {
  return series.map((s, i) => {
    const y = frame.top + 10 + i * 16;
    const x = frame.width - frame.right + 14;
    return `<rect x="${x}" y="${y - 8}" width="12" height="8" fill="${s.color}"/><text x="${x + 16}" y="${y}">${escape(s.name)}</text>`;
  });
}

/** A line chart; `xCategories` lists the x values when the axis is categorical (e.g. client counts). */
export function lineChart(options: {
  title: string;
  subtitle: string;
  xLabel: string;
  yLabel: string;
  series: readonly Series[];
  xCategories?: readonly number[];
  logX?: boolean;
}): string {
  const { series } = options;
  const plotW = frame.width - frame.left - frame.right;
  const plotH = frame.height - frame.top - frame.bottom;
  const yMax = Math.max(1, ...series.flatMap((s) => s.points.map((p) => p[1]))) * 1.1;
  const categories = options.xCategories;
  const xs = categories ?? [...new Set(series.flatMap((s) => s.points.map((p) => p[0])))].sort((a, b) => a - b);
  const xMin = Math.min(...xs);
  const xMax = Math.max(...xs);
  const x = (v: number): number => {
    if (categories !== undefined)
      return (
        frame.left + (categories.length === 1 ? plotW / 2 : (categories.indexOf(v) / (categories.length - 1)) * plotW)
      );
    return frame.left + (xMax === xMin ? plotW / 2 : ((v - xMin) / (xMax - xMin)) * plotW);
  };
  const y = (v: number): number => frame.top + plotH - (v / yMax) * plotH;
  const out = header(options.title, options.subtitle);
  for (const t of ticks(yMax)) {
    out.push(
      `<line x1="${frame.left}" x2="${frame.left + plotW}" y1="${y(t).toFixed(1)}" y2="${y(t).toFixed(1)}" stroke="#eee"/><text x="${frame.left - 6}" y="${(y(t) + 4).toFixed(1)}" text-anchor="end">${t}</text>`,
    );
  }
  for (const v of xs)
    out.push(`<text x="${x(v).toFixed(1)}" y="${frame.top + plotH + 16}" text-anchor="middle">${v}</text>`);
  out.push(
    `<line x1="${frame.left}" x2="${frame.left}" y1="${frame.top}" y2="${frame.top + plotH}" stroke="#333"/><line x1="${frame.left}" x2="${frame.left + plotW}" y1="${frame.top + plotH}" y2="${frame.top + plotH}" stroke="#333"/>`,
  );
  out.push(
    `<text x="${frame.left + plotW / 2}" y="${frame.height - 10}" text-anchor="middle">${escape(options.xLabel)}</text>`,
  );
  out.push(
    `<text transform="translate(14 ${frame.top + plotH / 2}) rotate(-90)" text-anchor="middle">${escape(options.yLabel)}</text>`,
  );
  for (const s of series) {
    const path = s.points.map((p, i) => `${i === 0 ? "M" : "L"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(" ");
    out.push(`<path d="${path}" fill="none" stroke="${s.color}" stroke-width="2"/>`);
    for (const p of s.points)
      out.push(
        `<circle cx="${x(p[0]).toFixed(1)}" cy="${y(p[1]).toFixed(1)}" r="3" fill="${s.color}"><title>${escape(`${s.name}: ${p[0]} -> ${p[1].toFixed(1)}`)}</title></circle>`,
      );
  }
  out.push(...legend(series), "</svg>");
  return `${out.join("\n")}\n`;
}

/** Empirical distribution functions of latency samples (x: milliseconds, log scale; y: fraction). */
export function cdfChart(options: {
  title: string;
  subtitle: string;
  series: readonly { name: string; color: string; sorted: readonly number[] }[];
}): string {
  const plotW = frame.width - frame.left - frame.right;
  const plotH = frame.height - frame.top - frame.bottom;
  const all = options.series.flatMap((s) => s.sorted).filter((v) => v > 0);
  const lo = Math.max(0.1, Math.min(...all));
  const hi = Math.max(lo * 10, ...all);
  const logLo = Math.floor(Math.log10(lo));
  const logHi = Math.ceil(Math.log10(hi));
  const x = (v: number): number =>
    frame.left + ((Math.log10(Math.max(v, 10 ** logLo)) - logLo) / (logHi - logLo)) * plotW;
  const y = (f: number): number => frame.top + plotH - f * plotH;
  const out = header(options.title, options.subtitle);
  for (const f of [0, 0.25, 0.5, 0.75, 0.9, 0.99, 1]) {
    out.push(
      `<line x1="${frame.left}" x2="${frame.left + plotW}" y1="${y(f).toFixed(1)}" y2="${y(f).toFixed(1)}" stroke="#eee"/><text x="${frame.left - 6}" y="${(y(f) + 4).toFixed(1)}" text-anchor="end">${f}</text>`,
    );
  }
  for (let e = logLo; e <= logHi; e++)
    out.push(
      `<text x="${x(10 ** e).toFixed(1)}" y="${frame.top + plotH + 16}" text-anchor="middle">${10 ** e >= 1 ? 10 ** e : (10 ** e).toFixed(1)}</text>`,
    );
  out.push(
    `<line x1="${frame.left}" x2="${frame.left}" y1="${frame.top}" y2="${frame.top + plotH}" stroke="#333"/><line x1="${frame.left}" x2="${frame.left + plotW}" y1="${frame.top + plotH}" y2="${frame.top + plotH}" stroke="#333"/>`,
  );
  out.push(
    `<text x="${frame.left + plotW / 2}" y="${frame.height - 10}" text-anchor="middle">latency (ms, log scale)</text>`,
  );
  out.push(
    `<text transform="translate(14 ${frame.top + plotH / 2}) rotate(-90)" text-anchor="middle">fraction of requests at or below</text>`,
  );
  for (const s of options.series) {
    const n = s.sorted.length;
    if (n === 0) continue;
    // At most 400 points per curve: the distribution, not every sample.
    const stride = Math.max(1, Math.floor(n / 400));
    const points: string[] = [];
    for (let i = 0; i < n; i += stride) points.push(`${x(s.sorted[i]!).toFixed(1)},${y((i + 1) / n).toFixed(1)}`);
    points.push(`${x(s.sorted[n - 1]!).toFixed(1)},${y(1).toFixed(1)}`);
    out.push(`<polyline points="${points.join(" ")}" fill="none" stroke="${s.color}" stroke-width="2"/>`);
  }
  out.push(...legend(options.series), "</svg>");
  return `${out.join("\n")}\n`;
}

/** One dot per measurement, one row per series, with the median marked. */
export function dotPlot(options: {
  title: string;
  subtitle: string;
  xLabel: string;
  series: readonly { name: string; color: string; values: readonly number[] }[];
}): string {
  const plotW = frame.width - frame.left - frame.right;
  const plotH = frame.height - frame.top - frame.bottom;
  const xMax = Math.max(1, ...options.series.flatMap((s) => s.values)) * 1.1;
  const x = (v: number): number => frame.left + (v / xMax) * plotW;
  const rowH = plotH / Math.max(1, options.series.length);
  const out = header(options.title, options.subtitle);
  for (const t of ticks(xMax)) {
    out.push(
      `<line x1="${x(t).toFixed(1)}" x2="${x(t).toFixed(1)}" y1="${frame.top}" y2="${frame.top + plotH}" stroke="#eee"/><text x="${x(t).toFixed(1)}" y="${frame.top + plotH + 16}" text-anchor="middle">${t}</text>`,
    );
  }
  out.push(
    `<line x1="${frame.left}" x2="${frame.left + plotW}" y1="${frame.top + plotH}" y2="${frame.top + plotH}" stroke="#333"/>`,
  );
  out.push(
    `<text x="${frame.left + plotW / 2}" y="${frame.height - 10}" text-anchor="middle">${escape(options.xLabel)}</text>`,
  );
  options.series.forEach((s, i) => {
    const cy = frame.top + rowH * (i + 0.5);
    out.push(`<text x="${frame.left - 6}" y="${cy + 4}" text-anchor="end">${escape(s.name)}</text>`);
    s.values.forEach((v, k) => {
      const jitter = ((k % 5) - 2) * 4;
      out.push(
        `<circle cx="${x(v).toFixed(1)}" cy="${(cy + jitter).toFixed(1)}" r="4" fill="${s.color}" fill-opacity="0.7"><title>${escape(`${s.name}: ${v.toFixed(0)}`)}</title></circle>`,
      );
    });
    const sorted = [...s.values].sort((a, b) => a - b);
    if (sorted.length > 0) {
      const m = sorted[Math.ceil(sorted.length / 2) - 1]!;
      out.push(
        `<line x1="${x(m).toFixed(1)}" x2="${x(m).toFixed(1)}" y1="${cy - rowH / 3}" y2="${cy + rowH / 3}" stroke="#000" stroke-width="2"/><text x="${(x(m) + 4).toFixed(1)}" y="${(cy - rowH / 3 + 10).toFixed(1)}">median ${m.toFixed(0)}</text>`,
      );
    }
  });
  out.push(...legend(options.series), "</svg>");
  return `${out.join("\n")}\n`;
}
