// The command-line flags that replace configuration variables (--database-url) go through loadConfig's
// overrides, and are checked like the variables they replace.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.ts';

describe('loadConfig overrides', () => {
  it('takes the database URL of a flag over DATABASE_URL', () => {
    const config = loadConfig(
      { DATABASE_URL: 'postgres://env@db:5432/env' },
      { overrides: { databaseUrl: 'postgres://flag@db:5432/flag' } },
    );
    expect(config.databaseUrl).toBe('postgres://flag@db:5432/flag');
  });

  it('takes the database URL of a flag over DATABASE_URL_FILE, without reading the file', () => {
    const config = loadConfig(
      { DATABASE_URL_FILE: '/nonexistent/database-url' },
      { overrides: { databaseUrl: 'postgres://flag@db:5432/flag' } },
    );
    expect(config.databaseUrl).toBe('postgres://flag@db:5432/flag');
  });

  it('checks an overriding database URL like DATABASE_URL', () => {
    expect(() => loadConfig({}, { overrides: { databaseUrl: 'mysql://db/loans' } })).toThrow(
      new ConfigError('DATABASE_URL', 'must start with postgres:// (got mysql://)'),
    );
  });

  it('applies the environment of the override with its defaults', () => {
    const config = loadConfig(
      { APP_ENV: 'development' },
      { overrides: { env: 'production', databaseUrl: 'postgres://u@db:5432/loans' } },
    );
    expect(config.env).toBe('production');
    expect(config.log.level).toBe('warn');
    expect(config.seedOnStart).toBe(false);
  });

  it('leaves the environment alone without overrides', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bl-overrides-'));
    const file = join(dir, 'url');
    writeFileSync(file, 'postgres://file@db:5432/file\n');
    expect(loadConfig({ DATABASE_URL_FILE: file }, { overrides: {} }).databaseUrl).toBe(
      'postgres://file@db:5432/file',
    );
  });
});
