/** Amounts: strings of the smallest unit on the wire (1 WTE = 10^12), shown in WTE. */

const UNIT = 10n ** 12n;

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
