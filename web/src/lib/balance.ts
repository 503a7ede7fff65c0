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

/**
 * `1234.5 WTE` of `1234500000000000`, with at most four decimals, rounded down; an amount
 * below 0.0001 WTE with all twelve.
 */
export function formatBalance(smallest: string): string {
  let value: bigint;
  try {
    value = BigInt(smallest);
  } catch {
    return `${smallest} (not an amount)`;
  }
  const whole = value / UNIT;
  const digits = (value % UNIT).toString().padStart(12, '0');
  // Prices per epoch are often far below 0.0001 WTE: those show every digit they have.
  const shown = whole === 0n && value > 0n && digits.startsWith('0000') ? 12 : 4;
  const fraction = digits.slice(0, shown).replace(/0+$/, '');
  const grouped = whole.toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return `${grouped}${fraction ? `.${fraction}` : ''} WTE`;
}

/** The exact amount in WTE, as `parseAmount` reads it: `1000.25` of `1000250000000000`. */
export function amountText(smallest: string): string {
  const value = BigInt(smallest);
  const fraction = (value % UNIT).toString().padStart(12, '0').replace(/0+$/, '');
  return `${value / UNIT}${fraction ? `.${fraction}` : ''}`;
}
