import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const restrictedEverywhere = [
  { selector: "MemberExpression[object.name='process'][property.name='env']", message: 'Read settings through src/config only.' },
  {
    selector: 'Literal[value=/^(23505|23503|40P01|40001|25P02)$/]',
    message: 'Name PostgreSQL errors with the helpers in src/store/pg-errors.ts (isUniqueViolation, isForeignKeyViolation, ...).',
  },
];

export default tseslint.config(
  { ignores: ['dist/', 'packages/*/dist/', 'node_modules/', 'coverage/', 'test-artifacts/', 'bench/results/', 'web/vendor/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        URL: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        Buffer: 'readonly',
        fetch: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-restricted-syntax': ['error', ...restrictedEverywhere],
    },
  },
  {
    // The HTTP layer reads and writes through the parts' functions: SQL lives beside its tables.
    files: ['src/http/**/*.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        ...restrictedEverywhere,
        {
          selector: "CallExpression[callee.property.name='query']",
          message: 'No SQL in src/http: call a function of the part that owns the table (src/desk, src/handover, ...).',
        },
      ],
    },
  },
  {
    // Where the SQLSTATE codes are named, once.
    files: ['src/store/pg-errors.ts'],
    rules: { 'no-restricted-syntax': 'off' },
  },
  {
    // Every call to the outside goes through src/outbound (span, traceparent, SSRF guard, Retry-After,
    // the one status policy); an HTTP client anywhere else would skip them. One exception, by design:
    // the attachment bucket (src/attachments/s3-store.ts) is reached through the AWS SDK's own client,
    // which signs its requests; it is the operator's store named in the settings, never a tenant's URL,
    // and every call there carries its own timeouts.
    files: ['src/**/*.ts'],
    ignores: ['src/outbound/**', 'src/cli/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            { name: 'undici', importNames: ['request', 'fetch', 'stream', 'pipeline', 'connect'], message: 'Call the outside through send() in src/outbound.' },
            { name: 'node:http', importNames: ['request', 'get'], message: 'Call the outside through send() in src/outbound.' },
            { name: 'node:https', message: 'Call the outside through send() in src/outbound.' },
          ],
        },
      ],
      'no-restricted-globals': ['error', { name: 'fetch', message: 'Call the outside through send() in src/outbound.' }],
    },
  },
  {
    files: ['src/config/**', 'test/**', 'bench/**', 'scripts/**', 'examples/**'],
    rules: { 'no-restricted-syntax': 'off' },
  },
  {
    files: ['test/**', 'bench/**'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    // The browser pages: plain ES modules, no build step.
    files: ['web/**/*.js'],
    languageOptions: {
      sourceType: 'module',
      globals: {
        window: 'readonly',
        document: 'readonly',
        location: 'readonly',
        navigator: 'readonly',
        sessionStorage: 'readonly',
        localStorage: 'readonly',
        EventSource: 'readonly',
        AbortController: 'readonly',
        AbortSignal: 'readonly',
        TextDecoderStream: 'readonly',
        crypto: 'readonly',
        Node: 'readonly',
        CSS: 'readonly',
        AudioContext: 'readonly',
        innerWidth: 'readonly',
        innerHeight: 'readonly',
      },
    },
  },
  {
    // The example bot: plain JavaScript for Node 20, so users can copy it without a build.
    files: ['examples/**/*.js'],
    languageOptions: { sourceType: 'module', globals: { AbortController: 'readonly', AbortSignal: 'readonly', TextDecoder: 'readonly' } },
  },
);
