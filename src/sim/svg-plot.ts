import type { ActivityPoint } from './run-simulation.js';

/**
 * A plot of a simulation's activity series as a self-contained SVG (no fonts, scripts or external
 * references; renders the same in a browser, rsvg-convert or ImageMagick): active hosts on the left
 * axis, power in kW on the right axis, simulated time in hours along the bottom.
 */
export interface ActivityPlotOptions {
  readonly title: string;
  /** A second line under the title (the policy, the totals). */
  readonly subtitle?: string;
}

const WIDTH = 960;
const HEIGHT = 480;
const MARGIN = { top: 70, right: 80, bottom: 56, left: 72 } as const;
const HOSTS_COLOUR = '#1f5fbf';
const POWER_COLOUR = '#d9661f';
const GRID_COLOUR = '#e3e3e3';
const TEXT_COLOUR = '#222222';
const SECONDS_PER_HOUR = 3600;
const WATTS_PER_KW = 1000;
const TARGET_TICKS = 6;
/** A maximum above OUTLIER_FACTOR x the 95th percentile is a transient; the axis then stops at p95 + 30 %. */
const OUTLIER_PERCENTILE = 0.95;
const OUTLIER_FACTOR = 2;
const HEADROOM = 1.3;

export function renderActivitySvg(series: readonly ActivityPoint[], options: ActivityPlotOptions): string {
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  const lastSeconds = series.length > 0 ? (series[series.length - 1] as ActivityPoint).atSeconds : 0;
  const hoursMax = Math.max(1, Math.ceil(lastSeconds / SECONDS_PER_HOUR));
  const hostValues = series.map((p) => p.activeHosts);
  const powerValues = series.map((p) => p.powerWatts / WATTS_PER_KW);
  const hostsScale = axisScale(hostValues, 1);
  const powerScale = axisScale(powerValues, 0.001);
  const hostsAxis = niceAxis(hostsScale);
  const powerAxis = niceAxis(powerScale);
  const clipped = hostsScale < Math.max(...hostValues, 0) || powerScale < Math.max(...powerValues, 0);
  const x = (seconds: number) => MARGIN.left + (seconds / SECONDS_PER_HOUR / hoursMax) * plotWidth;
  const yHosts = (hosts: number) => MARGIN.top + plotHeight - (hosts / hostsAxis.max) * plotHeight;
  const yPower = (kw: number) => MARGIN.top + plotHeight - (kw / powerAxis.max) * plotHeight;

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" ` +
      `font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="13" fill="${TEXT_COLOUR}">`,
  );
  out.push(`<rect width="${WIDTH}" height="${HEIGHT}" fill="#ffffff"/>`);
  out.push(`<text x="${WIDTH / 2}" y="26" text-anchor="middle" font-size="17" font-weight="bold">${escapeXml(options.title)}</text>`);
  if (options.subtitle !== undefined) out.push(`<text x="${WIDTH / 2}" y="47" text-anchor="middle" font-size="12">${escapeXml(options.subtitle)}</text>`);

  // Grid and left axis (hosts).
  for (let i = 0; i <= hostsAxis.ticks; i++) {
    const value = hostsAxis.step * i;
    const y = round(yHosts(value));
    out.push(`<line x1="${MARGIN.left}" y1="${y}" x2="${MARGIN.left + plotWidth}" y2="${y}" stroke="${GRID_COLOUR}"/>`);
    out.push(`<text x="${MARGIN.left - 8}" y="${y + 4}" text-anchor="end" fill="${HOSTS_COLOUR}">${formatTick(value)}</text>`);
  }
  // Right axis (power).
  for (let i = 0; i <= powerAxis.ticks; i++) {
    const value = powerAxis.step * i;
    const y = round(yPower(value));
    out.push(`<text x="${MARGIN.left + plotWidth + 8}" y="${y + 4}" text-anchor="start" fill="${POWER_COLOUR}">${formatTick(value)}</text>`);
  }
  // Time axis.
  const hourStep = hoursMax <= 6 ? 1 : hoursMax <= 12 ? 2 : hoursMax <= 36 ? 3 : Math.ceil(hoursMax / 8);
  for (let h = 0; h <= hoursMax; h += hourStep) {
    const px = round(x(h * SECONDS_PER_HOUR));
    out.push(`<line x1="${px}" y1="${MARGIN.top}" x2="${px}" y2="${MARGIN.top + plotHeight}" stroke="${GRID_COLOUR}"/>`);
    out.push(`<text x="${px}" y="${MARGIN.top + plotHeight + 20}" text-anchor="middle">${h}</text>`);
  }
  out.push(
    `<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${plotWidth}" height="${plotHeight}" fill="none" stroke="#888888"/>`,
    `<text x="${MARGIN.left + plotWidth / 2}" y="${HEIGHT - 12}" text-anchor="middle">simulated time (h)</text>`,
    `<text transform="translate(20 ${MARGIN.top + plotHeight / 2}) rotate(-90)" text-anchor="middle" fill="${HOSTS_COLOUR}">active hosts</text>`,
    `<text transform="translate(${WIDTH - 18} ${MARGIN.top + plotHeight / 2}) rotate(90)" text-anchor="middle" fill="${POWER_COLOUR}">power (kW)</text>`,
  );

  if (series.length > 0) {
    out.push(`<clipPath id="plot-area"><rect x="${MARGIN.left}" y="${MARGIN.top}" width="${plotWidth}" height="${plotHeight}"/></clipPath>`);
    out.push(polyline(series.map((p) => [x(p.atSeconds), yPower(p.powerWatts / WATTS_PER_KW)]), POWER_COLOUR));
    out.push(polyline(series.map((p) => [x(p.atSeconds), yHosts(p.activeHosts)]), HOSTS_COLOUR));
    if (clipped) {
      const peak = series.reduce((a, b) => (b.activeHosts > a.activeHosts ? b : a));
      out.push(
        `<text x="${MARGIN.left + 24}" y="${MARGIN.top + 18}" font-size="12">off scale: ${peak.activeHosts} hosts, ` +
          `${formatTick(Number((peak.powerWatts / WATTS_PER_KW).toPrecision(3)))} kW at ${(peak.atSeconds / SECONDS_PER_HOUR).toFixed(1)} h</text>`,
      );
    }
  } else {
    out.push(`<text x="${MARGIN.left + plotWidth / 2}" y="${MARGIN.top + plotHeight / 2}" text-anchor="middle">no decisions simulated</text>`);
  }

  // Legend, top right inside the plot.
  const lx = MARGIN.left + plotWidth - 170;
  const ly = MARGIN.top + 12;
  out.push(
    `<rect x="${lx - 8}" y="${ly - 8}" width="170" height="46" fill="#ffffff" fill-opacity="0.85" stroke="#cccccc"/>`,
    `<line x1="${lx}" y1="${ly + 4}" x2="${lx + 26}" y2="${ly + 4}" stroke="${HOSTS_COLOUR}" stroke-width="2.5"/>`,
    `<text x="${lx + 34}" y="${ly + 8}">active hosts</text>`,
    `<line x1="${lx}" y1="${ly + 24}" x2="${lx + 26}" y2="${ly + 24}" stroke="${POWER_COLOUR}" stroke-width="2.5"/>`,
    `<text x="${lx + 34}" y="${ly + 28}">power (kW)</text>`,
  );
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

function polyline(points: readonly (readonly [number, number])[], colour: string): string {
  const coords = points.map(([px, py]) => `${round(px)},${round(py)}`).join(' ');
  return `<polyline points="${coords}" fill="none" stroke="${colour}" stroke-width="2" stroke-linejoin="round" clip-path="url(#plot-area)"/>`;
}

/**
 * The top of an axis: the largest value, unless a short transient (a few points, like the start of a
 * day when every host is on) dwarfs the rest; then the 95th percentile with a margin, so the rest of
 * the day stays readable (the plot says what went off scale).
 */
function axisScale(values: readonly number[], floor: number): number {
  if (values.length === 0) return floor;
  const sorted = [...values].sort((a, b) => a - b);
  const max = sorted[sorted.length - 1] as number;
  const p95 = sorted[Math.min(sorted.length - 1, Math.ceil(OUTLIER_PERCENTILE * sorted.length) - 1)] as number;
  const scale = max > OUTLIER_FACTOR * p95 ? p95 * HEADROOM : max;
  return Math.max(floor, scale);
}

/** An axis from 0 with a "nice" step (1, 2 or 5 x 10^k) and about TARGET_TICKS ticks, covering max. */
export function niceAxis(max: number): { readonly max: number; readonly step: number; readonly ticks: number } {
  const rough = max / TARGET_TICKS;
  const magnitude = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= rough) ?? 10 * magnitude;
  const ticks = Math.max(1, Math.ceil(max / step - 1e-9));
  return { max: step * ticks, step, ticks };
}

function formatTick(value: number): string {
  return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(3)));
}

function round(v: number): number {
  return Math.round(v * 10) / 10;
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
