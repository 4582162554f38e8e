/** PostgreSQL LSNs: 64-bit WAL positions, written as two hexadecimal halves ("16/B374D848"). */

const LSN_TEXT = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;

export function parseLsn(text: string): bigint {
  const match = LSN_TEXT.exec(text.trim());
  if (!match) throw new Error(`"${text}" is not an LSN; expected the form 16/B374D848`);
  return (BigInt(`0x${match[1]}`) << 32n) | BigInt(`0x${match[2]}`);
}

export function formatLsn(lsn: bigint): string {
  const high = lsn >> 32n;
  const low = lsn & 0xffffffffn;
  return `${high.toString(16).toUpperCase()}/${low.toString(16).toUpperCase()}`;
}

export function isLsn(text: string): boolean {
  return LSN_TEXT.test(text.trim());
}
