import { invalidRequest } from '../common/errors';
import { isEventType } from '../common/event';

/** Nesting deeper than this is refused: JSON.stringify recurses and overflows Node's stack a
 * few thousand levels down, so deeper data could be stored but never delivered. */
export const MAX_DATA_DEPTH = 512;

export function assertEventType(type: unknown): asserts type is string {
  if (!isEventType(type)) {
    throw invalidRequest(`Invalid event type ${JSON.stringify(type)}: expected 1-16 of A-Z and _`);
  }
}

/**
 * Checks that data survives JSON unchanged, without recursion: no undefined, functions, symbols
 * or BigInt; numbers finite and, if integers, within ±(2^53-1) (larger ones were already rounded
 * by JSON.parse before they reached us, so storing them would silently change them); at most
 * MAX_DATA_DEPTH levels (which also stops cycles).
 */
export function assertEncodable(data: unknown): void {
  const stack: Array<[unknown, number]> = [[data, 1]];
  while (stack.length > 0) {
    const [value, depth] = stack.pop()!;
    switch (typeof value) {
      case 'string':
      case 'boolean':
        continue;
      case 'number':
        if (!Number.isFinite(value))
          throw invalidRequest(`Event data holds a number JSON cannot carry: ${value}`);
        if (Number.isInteger(value) && !Number.isSafeInteger(value)) {
          throw invalidRequest(
            `Event data holds an integer beyond 2^53 (${value}), which JSON loses: send it as a string`,
          );
        }
        continue;
      case 'object':
        break;
      default:
        throw invalidRequest(`Event data holds a ${typeof value}, which JSON cannot carry`);
    }
    if (value === null) continue;
    if (depth > MAX_DATA_DEPTH)
      throw invalidRequest(`Event data is nested deeper than ${MAX_DATA_DEPTH} levels`);
    const children = Array.isArray(value) ? value : Object.values(value as Record<string, unknown>);
    for (const child of children) stack.push([child, depth + 1]);
  }
}

/** Validates and encodes event data; refuses data over `maxBytes` of JSON. */
export function encodeEventData(data: unknown, maxBytes: number): { json: string; bytes: number } {
  assertEncodable(data);
  const json = JSON.stringify(data);
  const bytes = Buffer.byteLength(json);
  if (bytes > maxBytes) {
    throw invalidRequest(
      `Event data is ${bytes} bytes of JSON; this service accepts up to ${maxBytes}`,
    );
  }
  return { json, bytes };
}
