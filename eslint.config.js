// Lint rules that catch real defects; formatting is not linted.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-control-regex': 'off',
    },
  },
  {
    // Every YAML input goes through src/yaml's bounded parse (aliases and merge keys).
    files: ['src/**/*.ts'],
    ignores: ['src/yaml/**', 'src/**/*.test.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            {
              name: 'yaml',
              importNames: ['parse', 'parseDocument', 'parseAllDocuments', 'Parser', 'Composer'],
              message: 'parse YAML with parseYaml/parseYamlValues from src/yaml (bounded alias and merge expansion)',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['**/*.mjs', 'bin/**/*.js'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly' } },
  },
);
