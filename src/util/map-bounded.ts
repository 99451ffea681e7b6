/**
 * Maps `items` through `fn` with at most `limit` calls in flight, results in the order of `items`.
 * A rejection rejects the whole map (callers that must not fail turn failures into data first).
 */
export async function mapBounded<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index] as T, index);
    }
  };
  const workers = Array.from({ length: Math.max(1, Math.min(Math.floor(limit), items.length)) }, () => worker());
  await Promise.all(workers);
  return results;
}
