/** The endpoint table of docs/api.md, generated from the OpenAPI document (a test keeps them in step). */
interface OpenApiDoc {
  paths?: Record<string, Record<string, { summary?: string; tags?: string[]; security?: Record<string, unknown>[] }>>;
}

export function endpointTable(doc: unknown): string {
  const paths = (doc as OpenApiDoc).paths ?? {};
  const rows: string[] = [];
  for (const [path, ops] of Object.entries(paths)) {
    if (!path.startsWith('/api/')) continue;
    for (const [method, op] of Object.entries(ops)) {
      const auth = op.security?.some((s) => 'operator' in s) ? 'operator' : op.security?.some((s) => 'session' in s) ? 'session' : 'none';
      rows.push(`| ${method.toUpperCase()} | \`${path}\` | ${auth} | ${(op.summary ?? '').replace(/\|/g, '\\|')} |`);
    }
  }
  rows.sort((a, b) => a.split('|')[2]!.localeCompare(b.split('|')[2]!) || a.localeCompare(b));
  return ['| method | path | auth | what |', '|---|---|---|---|', ...rows].join('\n');
}
