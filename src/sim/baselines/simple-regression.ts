/**
 * Ordinary least squares of y on x = 1..n, with Apache Commons Math's SimpleRegression update
 * formulas (the library CloudSim's MathUtil uses), so predictions match it to the last bit.
 * Undefined when the fit is not defined (fewer than 3 points).
 */
export function simpleRegression(y: Float64Array): { readonly intercept: number; readonly slope: number } | undefined {
  const n = y.length;
  if (n < MIN_POINTS) return undefined;
  let sumX = 0;
  let sumY = 0;
  let sumXX = 0;
  let sumXY = 0;
  let xbar = 0;
  let ybar = 0;
  for (let i = 0; i < n; i++) {
    const x = i + 1;
    const v = y[i] ?? 0;
    if (i === 0) {
      xbar = x;
      ybar = v;
    } else {
      const fact1 = 1.0 + i;
      const fact2 = i / (1.0 + i);
      const dx = x - xbar;
      const dy = v - ybar;
      sumXX += dx * dx * fact2;
      sumXY += dx * dy * fact2;
      xbar += dx / fact1;
      ybar += dy / fact1;
    }
    sumX += x;
    sumY += v;
  }
  const slope = sumXY / sumXX;
  const intercept = (sumY - slope * sumX) / n;
  if (!Number.isFinite(slope) || !Number.isFinite(intercept)) return undefined;
  return { intercept, slope };
}

const MIN_POINTS = 3;
