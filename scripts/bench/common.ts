import type { Role } from './floor.js'

export const ROLES: Role[] = ['admin', 'sales']
export const BENCH_ADMIN = 'bench.admin'
export const BENCH_SALES = 'bench.sales'
export const SALES_NOTE = 'Llamar el lunes'

export const log = (message: string) => process.stderr.write(`[bench] ${message}\n`)
