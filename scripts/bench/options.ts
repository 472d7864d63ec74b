import { parseArgs } from 'node:util'

export interface Options {
  clients: number
  leads: number
  duration: number
  connections: number
  json: boolean
  skipSeed: boolean
  /** Scenario ids to measure (stats,agenda…); empty: all. */
  only: string[]
}

export const USAGE =
  'usage: DATABASE_URL=postgres://... npm run bench -- [--clients N=100000] [--leads M=500000] ' +
  '[--duration S=10] [--connections C=32] [--json] [--skip-seed] [--only id,id…]'

export function parseOptions(): Options {
  const { values } = parseArgs({
    options: {
      clients: { type: 'string', default: '100000' },
      leads: { type: 'string', default: '500000' },
      duration: { type: 'string', default: '10' },
      connections: { type: 'string', default: '32' },
      json: { type: 'boolean', default: false },
      'skip-seed': { type: 'boolean', default: false },
      only: { type: 'string', default: '' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  if (values.help) {
    console.log(USAGE)
    process.exit(0)
  }
  const count = (name: string, text: string, min: number, max = Number.MAX_SAFE_INTEGER) => {
    const cleaned = text.replaceAll('_', '')
    const value = Number(cleaned)
    if (!/^\d+$/.test(cleaned) || value < min || value > max) {
      throw new Error(`--${name} must be a whole number from ${min} to ${max}, not ${JSON.stringify(text)}`)
    }
    return value
  }
  return {
    clients: count('clients', values.clients, 1),
    leads: count('leads', values.leads, 1),
    duration: count('duration', values.duration, 1, 3600),
    connections: count('connections', values.connections, 1, 200),
    json: values.json,
    skipSeed: values['skip-seed'],
    only: values.only.split(',').filter(Boolean),
  }
}
