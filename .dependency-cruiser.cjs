// The layering of src/, checked in CI (`npm run lint:layers`); docs/architecture.md explains it.

/**
 * The folders (and root files) of src/, bottom first. Each may import only what stands before it:
 * a strict order, so no two folders can import each other, directly or around a loop.
 */
const LAYERS = [
  // Shared pieces: no feature in them.
  'errors',
  'phone.ts',
  'time-zone.ts',
  'money.ts',
  'db',
  'http',
  'auth',
  'events',
  'audit',
  // The pipeline settings and business time, which the timeline's first responses use.
  'pipeline',
  'timeline',
  // The metrics registry, which the jobs and the login count into.
  'metrics',
  'logging.ts',
  'env.ts',
  'config.ts',
  // Features, each above the ones it uses.
  'health',
  'dashboard',
  'assignment',
  'api-keys',
  'views',
  'clients',
  'leads',
  'tasks',
  'agenda',
  'activities',
  'users',
  'inbound',
  'search',
  'spreadsheets',
  'trash',
  'account',
  'forms',
  'notifications',
  'whatsapp',
  'webhooks',
  // The process: registration, jobs, start.
  'jobs',
  'app.ts',
  'runtime.ts',
  'server.ts',
  'worker.ts',
  // Commands an operator runs (create-admin, db), also from the built image.
  'cli',
]

const escape = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
const pathOf = (layer) => (layer.endsWith('.ts') ? `^src/${escape(layer)}$` : `^src/${escape(layer)}/`)

const layerRules = LAYERS.slice(0, -1).map((layer, index) => ({
  name: `layer-${layer}`,
  comment: `src/${layer} may import only what stands before it in LAYERS (.dependency-cruiser.cjs)`,
  severity: 'error',
  from: { path: pathOf(layer) },
  to: { path: LAYERS.slice(index + 1).map(pathOf) },
}))

module.exports = {
  forbidden: [
    ...layerRules,
    {
      name: 'unlisted-folder',
      comment: 'every folder and root file of src/ has its place in LAYERS',
      severity: 'error',
      from: { path: '^src/', pathNot: LAYERS.map(pathOf) },
      to: {},
    },
    {
      name: 'no-http-in-services',
      comment:
        'only routes (routes.ts, *-routes.ts) and schemas (schemas.ts) use http/: services know nothing of HTTP',
      severity: 'error',
      from: { path: '^src/[^/]+/', pathNot: ['^src/http/', 'routes\\.ts$', '/schemas\\.ts$'] },
      to: { path: '^src/http/' },
    },
    {
      name: 'no-circular',
      comment: 'no module imports itself around a loop',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'src-stands-alone',
      comment: 'nothing in src/ imports tests/ or scripts/',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^(tests|scripts)/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: 'node_modules' },
    tsConfig: { fileName: 'tsconfig.json' },
    // Type-only imports count: a type is a dependency too.
    tsPreCompilationDeps: true,
  },
}
