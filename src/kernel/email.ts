/**
 * Email addresses: normalised once (trim, Unicode NFC, lower case) so that one mailbox maps to
 * one account; the unique index is on the normalised form. Shape checks are deliberately loose
 * (the mailbox proves itself by receiving mail) but bounded: RFC 5321 caps a path at 254 octets.
 */
export function normalizeEmail(raw: string): string {
  return raw.trim().normalize('NFC').toLowerCase();
}

const SHAPE = /^[^\s@<>()\[\],;:"\\]{1,64}@[^\s@<>()\[\],;:"\\]+\.[^\s@<>()\[\],;:"\\]+$/u;

export function isPlausibleEmail(normalized: string): boolean {
  return Buffer.byteLength(normalized) <= 254 && SHAPE.test(normalized) && !/[\u0000-\u001f\u007f]/.test(normalized);
}

/** A log-safe form of an address: first character of the local part and the domain. */
export function maskEmail(email: string): string {
  const at = email.lastIndexOf('@');
  if (at < 1) return '***';
  return `${email[0]}***@${email.slice(at + 1)}`;
}
