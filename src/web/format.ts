/** Small display helpers for the hosted pages (no I/O). */

/** "2026-01-15 12:00 UTC": unambiguous for every reader, whatever their locale. */
export function when(iso: string | number | null | undefined): string {
  if (iso === null || iso === undefined) return '—';
  const d = new Date(typeof iso === 'number' ? iso : Date.parse(iso));
  return Number.isNaN(d.getTime()) ? '—' : d.toISOString().slice(0, 16).replace('T', ' ') + ' UTC';
}

/** A share (0..1) as a percentage, or a dash when unknown. */
export function percent(v: number | null | undefined): string {
  return v === null || v === undefined || !Number.isFinite(v) ? '—' : `${Math.round(v * 100)}%`;
}
