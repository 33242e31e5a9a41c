// Layers of edgetune, checked by `npm run lint` (dependency-cruiser). docs/architecture.md draws them.
// Lower layers never import higher ones:
//   core  <-  runtime, devices  <-  quantize, agent  <-  console, deploy  <-  cli  <-  bin
// Browser pages (agent/page, console/page, web/) are a world of their own: they import each other's
// shared code in web/ and their server's api-types.ts, nothing else.
// bench/ and test/ may import anything; nothing imports them.
const layer = (name, from, forbidden, comment) => ({
  name,
  comment,
  severity: 'error',
  from: { path: from },
  to: { path: forbidden },
});

module.exports = {
  forbidden: [
    {
      name: 'no-file-cycles',
      comment: 'Two modules that import each other (directly or through others) are one module in two files.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'no-folder-cycles',
      comment: 'Folders that import each other cannot be read, tested or moved alone.',
      severity: 'error',
      scope: 'folder',
      from: {},
      to: { circular: true },
    },
    layer(
      'core-is-the-bottom',
      '^core/',
      '^(runtime|devices|agent|console|deploy|quantize|cli|bin|bench|test)/',
      'core/ (errors, logging, hashing, durable writes, SQLite) is used by every layer and imports none.',
    ),
    layer(
      'runtime-imports-only-core',
      '^runtime/',
      '^(devices|agent|console|deploy|quantize|cli|bin|bench|test)/',
      'runtime/ is the device-side library: models, engines, heads, samples, sync; it builds on core/ only.',
    ),
    layer(
      'devices-import-only-core',
      '^devices/',
      '^(runtime|agent|console|deploy|quantize|cli|bin|bench|test)/',
      'devices/ (boards, detection, sample sources) builds on core/ only; the agent wires sources to the store.',
    ),
    layer(
      'quantize-is-a-laptop-tool',
      '^quantize/',
      '^(devices|agent|console|deploy|cli|bin|bench|test)/',
      'quantize/ (PTQ, model inspection) uses the runtime library; nothing on a device needs it.',
    ),
    layer(
      'agent-is-below-the-fleet',
      '^agent/',
      '^(console|deploy|quantize|cli|bin|bench|test)/',
      'agent/ runs on the device: it knows nothing of the console, the deploy tools or the command line.',
    ),
    layer(
      'console-is-not-a-cli',
      '^console/',
      '^(quantize|cli|bin|bench|test)/',
      'console/ is a server: the CLI starts it, never the other way round.',
    ),
    layer(
      'deploy-is-not-the-fleet',
      '^deploy/',
      '^(agent|console|quantize|cli|bin|bench|test)/',
      'deploy/ builds bundles and provisions devices; the bundle entry lives in cli/ and is named by path.',
    ),
    layer('cli-not-tests', '^(cli|bin)/', '^(bench|test)/', 'The command never imports benchmarks or tests.'),
    layer(
      'pages-are-browser-code',
      '^(agent|console)/page/|^web/',
      '^(core|runtime|devices|quantize|deploy|cli|bin|bench|test)/|^(agent|console)/(?!page/|api-types[.]ts$)',
      'Browser pages import only shared page code (web/) and the API types of their server, never node code.',
    ),
    {
      name: 'pages-use-no-node-builtins',
      comment: 'A page runs in the browser: node:fs, node:crypto and the like do not exist there.',
      severity: 'error',
      from: { path: '^(agent|console)/page/|^web/|^(agent|console)/api-types[.]ts$' },
      to: { dependencyTypes: ['core'] },
    },
    layer(
      'a-page-talks-to-its-own-server',
      '^agent/page/',
      '^console/',
      'The agent page reads the agent API types; the console page the console ones.',
    ),
    layer(
      'a-page-talks-to-its-own-server',
      '^console/page/',
      '^agent/',
      'The console page reads the console API types, not the agent ones.',
    ),
    layer('shared-page-code-is-shared', '^web/', '^(agent|console)/', 'web/ holds what both pages use; it knows neither server.'),
    layer(
      'api-types-are-types-only',
      '^(agent|console)/api-types[.]ts$',
      '.',
      'The API types are read by the browser: they import nothing, so no node code reaches a page through them.',
    ),
    {
      name: 'servers-do-not-import-pages',
      comment: 'Pages are built by esbuild into dist/pages and served as files; node code never imports them.',
      severity: 'error',
      from: { path: '^(core|runtime|devices|quantize|agent|console|deploy|cli|bin)/', pathNot: '^(agent|console)/page/' },
      to: { path: '^web/|^(agent|console)/page/' },
    },
    {
      name: 'device-info-stays-light',
      comment: '`edgetune device info` reads /proc: it must not load the TFLite importer or onnx-proto.',
      severity: 'error',
      from: { path: '^cli/commands/device\\.ts$' },
      to: { path: '^runtime/models/(tflite-import|onnx-graph)\\.ts$|onnx-proto', reachable: true },
    },
    {
      name: 'device-bundle-has-no-laptop-tools',
      comment: 'A device bundle (cli/bundle-entry.ts) carries the agent, not the console, quantize or SSH provisioning.',
      severity: 'error',
      from: { path: '^cli/bundle-entry\\.ts$' },
      to: { path: '^(console|quantize|deploy)/|node_modules/ssh2/', reachable: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|node_modules)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.mjs'] },
  },
};
