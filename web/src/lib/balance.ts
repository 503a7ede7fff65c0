/** Amounts: strings of the smallest unit on the wire (1 WTE = 10^12), shown and typed in WTE. */

const UNIT = 10n ** 12n;

/** `2.5` (WTE) in the smallest unit; an error in words for anything else. */
export function parseAmount(text: string): bigint {
  const match = /^\s*(\d+)(?:\.(\d{1,12}))?\s*$/.exec(text);
  if (!match) {
    throw new Error('an amount in WTE, such as 2.5 (at most 12 decimals)');
  }
  return BigInt(match[1]) * UNIT + BigInt((match[2] ?? '').padEnd(12, '0'));
}

/** `1234.5 WTE` of `1234500000000000`, with at most four decimals, rounded down. */
export function formatBalance(smallest: string): string {
  let value: bigint;
  try {
    value = BigInt(smallest);
  } catch {
    return `${smallest} (not an amount)`;
  }
  const whole = value / UNIT;
  const fraction = (value % UNIT).toString().padStart(12, '0').slice(0, 4).replace(/0+$/, '');
  const grouped = whole.toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return `${grouped}${fraction ? `.${fraction}` : ''} WTE`;
}
