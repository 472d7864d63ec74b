/** Where a database URL points, for messages: host, port and database, never the user or password. */
export function describeDatabase(url: string): string {
  try {
    const parsed = new URL(url)
    const socketFolder = parsed.searchParams.get('host')
    const database = decodeURIComponent(parsed.pathname.slice(1)) || 'postgres'
    if (socketFolder?.startsWith('/')) return `the database ${database} on the socket in ${socketFolder}`
    return `the database ${database} at ${parsed.hostname}:${parsed.port || '5432'}`
  } catch {
    return 'the database (its URL cannot be read)'
  }
}
